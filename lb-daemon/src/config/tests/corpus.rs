//! The golden corpus: every `tests/configs/*.conf` loads and dumps to its
//! `.json` (`LB_BLESS=1` rewrites them).

use super::*;

/// `tests/configs` of the repository, from lb-daemon or from a scratch
/// crate building this module out of tree.
fn fixture_dir() -> PathBuf {
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/configs");
    if beside.is_dir() {
        return beside;
    }
    match std::env::var_os("LB_REPO_ROOT") {
        Some(root) => Path::new(&root).join("tests/configs"),
        None => PathBuf::from("/work/main/tests/configs"),
    }
}

pub(super) fn fixtures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .expect("tests/configs exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    v.sort();
    v
}

#[test]
fn golden_corpus_matches() {
    let bless = std::env::var_os("LB_BLESS").is_some_and(|v| v == "1");
    let files = fixtures();
    assert!(files.len() >= 5, "corpus missing: {files:?}");
    let mut failures = Vec::new();
    for conf in files {
        let loaded = match load(&conf) {
            Ok(l) => l,
            Err(d) => panic!("{} does not load:\n{d}", conf.display()),
        };
        let json = dump_json(&loaded.config);
        let golden = conf.with_extension("json");
        if bless {
            std::fs::write(&golden, &json).unwrap();
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(want) if want == json => {}
            Ok(_) => failures.push(format!(
                "{} differs from {}",
                conf.display(),
                golden.display()
            )),
            Err(e) => failures.push(format!("{}: {e} (run with LB_BLESS=1)", golden.display())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn corpus_warnings_are_the_expected_ones() {
    // Realistic files should load with no surprise warnings; only the mail
    // notice is expected.
    for conf in fixtures() {
        let l = load(&conf).unwrap();
        for w in &l.warnings {
            assert!(
                w.message.contains("no e-mail is sent"),
                "unexpected warning: {w}"
            );
        }
    }
}
