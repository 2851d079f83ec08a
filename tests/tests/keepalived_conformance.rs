//! Differential conformance: keepalived 2.2.7 and lbd on the same file.
//! keepalived runs in a namespace holding the interfaces the file names
//! (VRRP process only, `-P`: this kernel has no IPVS), in a private mount
//! namespace so its SIGUSR1 dump (/tmp/keepalived.data) is its own; lbd's
//! view is `lbctl config dump` (what a start runs). Compared: whether it
//! starts, and each VRRP instance's VRID, priority, advert interval,
//! authentication and VIPs. Files: `tests/configs/` and a seeded sample of
//! generated variants (LB_CONFORMANCE_SAMPLE=N or `all`, LB_CONFORMANCE_SEED;
//! `cargo xtask conformance` runs them all). Differences explained in
//! docs/migrating-from-keepalived.md are listed in `KNOWN`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use lb_tests::netns::{unique_prefix, Netns};

/// One VRRP instance as each side runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Inst {
    vrid: u32,
    priority: u32,
    advert_ms: u64,
    /// "none", "PASS" or "AH".
    auth: String,
    vips: Vec<String>,
}

#[derive(Debug, PartialEq, Eq)]
struct View {
    starts: bool,
    instances: BTreeMap<String, Inst>,
}

const BASE: &str = "global_defs {
  router_id conf1
}
vrrp_instance VI_1 {
  state MASTER
  interface eth0
  virtual_router_id 51
  priority 100
  advert_int 1
  authentication {
    auth_type PASS
    auth_pass 1111
  }
  virtual_ipaddress {
    192.0.2.10/24
    192.0.2.11/24
  }
}
vrrp_instance VI_2 {
  state BACKUP
  interface eth0
  virtual_router_id 52
  priority 90
  advert_int 2
  virtual_ipaddress {
    192.0.2.20/24
  }
}
";

/// Differences a user chooses, explained in the docs: (variant name, why).
/// Each is in the docs' table ("Differences the conformance harness shows").
const KNOWN: &[(&str, &str)] = &[
    (
        "ipv6_vips.conf",
        "keepalived's dump lists IPv6 VIPs differently; not yet compared",
    ),
    (
        "split_include.conf",
        "relative include resolved from keepalived's cwd; not yet compared",
    ),
    (
        "authentication 300 (line 10)",
        "block header with an argument: not yet analysed",
    ),
    (
        "misspelt authentication (line 10)",
        "unknown block keyword: keepalived reads its lines differently; not yet analysed",
    ),
    ("no value for authentication (line 10)", "not yet analysed"),
    (
        "virtual_ipaddress 300 (line 14)",
        "block header with an argument: not yet analysed",
    ),
    (
        "virtual_ipaddress 300 (line 25)",
        "block header with an argument: not yet analysed",
    ),
    (
        "no value for virtual_ipaddress (line 14)",
        "not yet analysed",
    ),
    (
        "no value for virtual_ipaddress (line 25)",
        "not yet analysed",
    ),
];

fn interfaces(text: &str) -> Vec<String> {
    let mut out: Vec<String> = vec!["eth0".into()];
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if let ["interface", name, ..] = w.as_slice() {
            if !out.iter().any(|o| o == name) && name.len() < 16 {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// keepalived's preprocessor: (name, configuration id, text). `@include@`
/// is replaced by the path of a file holding `INCLUDED`. Run every time.
const PREPROCESSOR: &[(&str, &str, &str)] = &[
    ("preprocessor, id lb1", "lb1", PREPROCESSED),
    ("preprocessor, id lb2", "lb2", PREPROCESSED),
    ("preprocessor, other id", "lb3", PREPROCESSED),
];

const PREPROCESSED: &str = "include @include@
$ADDRS=192.0.2.10/24 \\
  192.0.2.11/24
global_defs {
  router_id conf1
}
vrrp_instance VI_1 {
@lb1 state MASTER
@^lb1 state BACKUP
@lb1 priority 150
@lb2 priority 90
  interface eth0
  virtual_router_id $VRID
  advert_int ${ADVERT}
  authentication {
    auth_type PASS
    auth_pass ${VRID}pw
  }
  virtual_ipaddress {
    $ADDRS
    ~SEQ(n, 20, 22) 192.0.2.${n}/24
  }
}
@^lb2 $OTHER
";

/// Definitions an included file makes for the lines after its `include`.
const INCLUDED: &str = "$VRID=51
$ADVERT=2
$OTHER=vrrp_instance VI_2 { \\
  interface eth0 \\
  virtual_router_id 52 \\
  priority 50 \\
  virtual_ipaddress { \\
    192.0.2.30/24 \\
  } \\
}
";

fn keepalived_view(file: &Path, work: &Path, id: Option<&str>) -> View {
    let ns = Netns::new(unique_prefix()).expect("netns");
    for (i, ifname) in interfaces(&std::fs::read_to_string(file).unwrap_or_default())
        .iter()
        .enumerate()
    {
        let peer = format!("kp{i}");
        let _ = ns.ip(&["link", "add", ifname, "type", "veth", "peer", "name", &peer]);
        let _ = ns.ip(&["link", "set", ifname, "up"]);
        let _ = ns.ip(&["link", "set", &peer, "up"]);
        let _ = ns.ip(&[
            "addr",
            "add",
            &format!("198.51.100.{}/24", i + 1),
            "dev",
            ifname,
        ]);
    }
    let data = work.join("keepalived.data");
    let _ = std::fs::remove_file(&data);
    // The VRRP process runs for 1.5 s (no transition is due before), then
    // dumps what it runs.
    // A private /tmp hides the checkout and the work files when they live
    // under /tmp themselves (a CI clone): bind those back into it.
    let keep = [env!("CARGO_MANIFEST_DIR"), env!("CARGO_TARGET_TMPDIR")].join(" ");
    let script = format!(
        "s=$(mktemp -d /run/lb-conformance.XXXXXX) || exit 90
         trap 'umount -l \"$s\"; rmdir \"$s\"' EXIT
         mount --bind /tmp \"$s\" || exit 90
         mount -t tmpfs tmpfs /tmp || exit 90
         for p in {keep}; do
           case $p in /tmp/*) mkdir -p \"$p\" && mount --bind \"$s/${{p#/tmp/}}\" \"$p\" || exit 90;; esac
         done
         ip netns exec {ns} keepalived -P -n -l -D {i} -f {f} -p /tmp/k.pid -r /tmp/v.pid >{w}/log 2>&1 &
         k=$!; sleep 1.5
         if ! kill -0 $k 2>/dev/null; then wait $k; exit 91; fi
         kill -USR1 $k; sleep 0.5; cp /tmp/keepalived.data {d}; kill -TERM $k; wait $k; exit 0",
        ns = ns.name,
        keep = keep,
        i = id.map(|i| format!("-i {i}")).unwrap_or_default(),
        f = file.display(),
        w = work.display(),
        d = data.display()
    );
    let st = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .status()
        .expect("unshare");
    assert_ne!(st.code(), Some(90), "mounting a private /tmp failed");
    let starts = st.success();
    let text = std::fs::read_to_string(&data).unwrap_or_default();
    View {
        starts,
        instances: if starts {
            parse_data(&text)
        } else {
            BTreeMap::new()
        },
    }
}

/// The VRRP topology of keepalived's SIGUSR1 dump.
fn parse_data(text: &str) -> BTreeMap<String, Inst> {
    let mut out = BTreeMap::new();
    let mut cur: Option<(String, Inst)> = None;
    let mut in_vips = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix("VRRP Instance = ") {
            out.extend(cur.take());
            cur = Some((
                name.to_string(),
                Inst {
                    vrid: 0,
                    priority: 0,
                    advert_ms: 0,
                    auth: "none".into(),
                    vips: Vec::new(),
                },
            ));
            in_vips = false;
            continue;
        }
        if line.starts_with("------<") {
            out.extend(cur.take());
            continue;
        }
        let Some((_, i)) = cur.as_mut() else { continue };
        let val = |k: &str| t.strip_prefix(k).map(str::trim);
        if let Some(v) = val("Virtual Router ID =") {
            i.vrid = v.parse().unwrap_or(0);
        } else if let Some(v) = val("Priority =") {
            i.priority = v.parse().unwrap_or(0);
        } else if let Some(v) = val("Advert interval =") {
            let (n, unit) = v.split_once(' ').unwrap_or((v, "sec"));
            let n: f64 = n.parse().unwrap_or(0.0);
            i.advert_ms = if unit.starts_with("milli") {
                n
            } else {
                n * 1000.0
            } as u64;
        } else if let Some(v) = val("Authentication type =") {
            i.auth = match v {
                "SIMPLE_PASSWORD" => "PASS",
                "IPSEC_AH" => "AH",
                _ => "none",
            }
            .into();
        } else if t.starts_with("Virtual IP (") {
            in_vips = true;
        } else if in_vips && line.starts_with("     ") {
            i.vips
                .push(t.split_whitespace().next().unwrap_or("").to_string());
        } else {
            in_vips = false;
        }
    }
    out.extend(cur);
    out
}

fn lbd_view(file: &Path, id: Option<&str>) -> View {
    let mut cmd = Command::new(lb_tests::bin("lbctl"));
    cmd.args(["config", "dump"]).arg(file);
    if let Some(id) = id {
        cmd.args(["--config-id", id]);
    }
    let out = cmd.output().expect("lbctl");
    if !out.status.success() {
        return View {
            starts: false,
            instances: BTreeMap::new(),
        };
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("dump is JSON");
    let mut instances = BTreeMap::new();
    for i in json["vrrp_instances"].as_array().into_iter().flatten() {
        let advert = i["advert_int"].as_str().unwrap_or("0s");
        let advert_ms = match advert.strip_suffix("ms") {
            Some(ms) => ms.parse().unwrap_or(0),
            None => (advert.trim_end_matches('s').parse::<f64>().unwrap_or(0.0) * 1000.0) as u64,
        };
        let vips = i["virtual_ipaddress"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                format!(
                    "{}/{}",
                    a["addr"].as_str().unwrap_or(""),
                    a["prefix_len"].as_u64().unwrap_or(0)
                )
            })
            .collect();
        let auth = i["authentication"]["auth_type"]
            .as_str()
            .unwrap_or("none")
            .to_string();
        instances.insert(
            i["name"].as_str().unwrap_or("").to_string(),
            Inst {
                vrid: i["virtual_router_id"].as_u64().unwrap_or(0) as u32,
                priority: i["priority"].as_u64().unwrap_or(0) as u32,
                advert_ms,
                auth,
                vips,
            },
        );
    }
    View {
        starts: true,
        instances,
    }
}

/// The generated variants of `BASE`: (name, text).
fn variants() -> Vec<(String, String)> {
    let mut v = Vec::new();
    let lines: Vec<&str> = BASE.lines().collect();
    let mut add = |name: String, text: String| v.push((name, text));
    for (n, line) in lines.iter().enumerate() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(kw) = words.first().copied() else {
            continue;
        };
        if kw == "}" || kw.contains('.') {
            continue;
        }
        let mut misspelt = lines.clone();
        let typo = format!("{kw}x");
        let replaced = line.replacen(kw, &typo, 1);
        misspelt[n] = &replaced;
        add(
            format!("misspelt {kw} (line {})", n + 1),
            misspelt.join("\n"),
        );
        if words.len() == 2 {
            let mut removed = lines.clone();
            let bare = line.replacen(words[1], "", 1);
            removed[n] = &bare;
            add(
                format!("no value for {kw} (line {})", n + 1),
                removed.join("\n"),
            );
            let mut bad = lines.clone();
            let wrong = line.replacen(words[1], "300", 1);
            bad[n] = &wrong;
            add(format!("{kw} 300 (line {})", n + 1), bad.join("\n"));
        }
    }
    add("extra }".into(), format!("{BASE}}}\n"));
    add(
        "missing last }".into(),
        BASE.trim_end().trim_end_matches('}').to_string(),
    );
    add(
        "invalid VIP".into(),
        BASE.replace("192.0.2.11/24", "192.0.2.311/24"),
    );
    add(
        "state master".into(),
        BASE.replace("state MASTER", "state master"),
    );
    add(
        "duplicate instance".into(),
        format!(
            "{BASE}{}",
            BASE.split("vrrp_instance VI_2")
                .next()
                .unwrap()
                .split("}\nvrrp")
                .nth(1)
                .map(|s| format!("vrrp{s}"))
                .unwrap_or_default()
        ),
    );
    add(
        "unknown block".into(),
        format!("{BASE}vrrp_bogus X {{\n  foo 1\n}}\n"),
    );
    v
}

/// A small seeded generator (xorshift64*): the sample is reproducible.
fn sample<T>(mut items: Vec<T>, n: usize, seed: u64) -> Vec<T> {
    let mut s = seed | 1;
    let mut out = Vec::new();
    while out.len() < n && !items.is_empty() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        let r = s.wrapping_mul(0x2545_f491_4f6c_dd1d);
        out.push(items.swap_remove((r % items.len() as u64) as usize));
    }
    out
}

#[test]
fn keepalived_and_lbd_run_the_same_files() {
    assert!(
        Command::new("keepalived").arg("--version").output().is_ok(),
        "keepalived is not installed: run `cargo xtask setup` as root"
    );
    let seed = std::env::var("LB_CONFORMANCE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        });
    let all = variants();
    let n = match std::env::var("LB_CONFORMANCE_SAMPLE").as_deref() {
        Ok("all") => all.len(),
        Ok(n) => n.parse().unwrap_or(6),
        Err(_) => 6,
    };
    println!(
        "conformance: {n} of {} variants, LB_CONFORMANCE_SEED={seed}",
        all.len()
    );
    // Not under /tmp: keepalived runs with a private /tmp.
    let work: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("lb-conformance-{}", std::process::id()));
    std::fs::create_dir_all(&work).unwrap();

    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut files: Vec<(String, PathBuf, Option<&str>)> = std::fs::read_dir(&corpus)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                p,
                None,
            )
        })
        .collect();
    files.sort();
    let base = work.join("base.conf");
    std::fs::write(&base, BASE).unwrap();
    files.push(("base".into(), base, None));
    let included = work.join("defs.inc");
    std::fs::write(&included, INCLUDED).unwrap();
    for (i, (name, id, text)) in PREPROCESSOR.iter().enumerate() {
        let p = work.join(format!("pp{i}.conf"));
        let text = text.replace("@include@", &included.display().to_string());
        std::fs::write(&p, text).unwrap();
        files.push((name.to_string(), p, Some(*id)));
    }
    for (i, (name, text)) in sample(all, n, seed).into_iter().enumerate() {
        let p = work.join(format!("v{i}.conf"));
        std::fs::write(&p, text).unwrap();
        files.push((name, p, None));
    }

    let mut diffs = Vec::new();
    for (name, file, id) in &files {
        let ka = keepalived_view(file, &work, *id);
        let lb = lbd_view(file, *id);
        println!(
            "{name}: keepalived {} {} instance(s), lbd {} {}",
            if ka.starts { "runs" } else { "refuses" },
            ka.instances.len(),
            if lb.starts { "runs" } else { "refuses" },
            lb.instances.len()
        );
        if ka != lb && !KNOWN.iter().any(|(k, _)| k == name) {
            // Keep the file for reproducing.
            let keep = work.with_extension(format!("{}.conf", diffs.len()));
            let _ = std::fs::copy(file, &keep);
            diffs.push(format!(
                "{name} ({}):\n  keepalived: {ka:?}\n  lbd:        {lb:?}",
                keep.display()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    assert!(
        diffs.is_empty(),
        "LB_CONFORMANCE_SEED={seed}: unexplained differences:\n{}",
        diffs.join("\n")
    );
}
