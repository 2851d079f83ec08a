//! `cargo xtask man`: man pages and shell completions rendered from the
//! clap definitions in `lb-cli`, so they never drift from the binaries.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

/// Writes `out/man/*.8` and `out/completions/*`; returns the files.
pub fn generate(out: &Path) -> Result<Vec<PathBuf>> {
    let man = out.join("man");
    let comp = out.join("completions");
    std::fs::create_dir_all(&man).with_context(|| format!("creating {}", man.display()))?;
    std::fs::create_dir_all(&comp).with_context(|| format!("creating {}", comp.display()))?;
    let mut written = Vec::new();
    for cmd in [lb_cli::lbd::Args::command(), lb_cli::lbctl::Args::command()] {
        written.extend(pages(&cmd, &man)?);
        let mut cmd = cmd;
        let name = cmd.get_name().to_string();
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let p = clap_complete::generate_to(shell, &mut cmd, &name, &comp)
                .with_context(|| format!("{shell} completions of {name}"))?;
            written.push(p);
        }
    }
    Ok(written)
}

/// One page for the command and one per subcommand (`lbctl-backends.8`).
fn pages(cmd: &clap::Command, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let render = |cmd: clap::Command, file: &str| -> Result<PathBuf> {
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd)
            .section("8")
            .render(&mut buf)
            .with_context(|| format!("rendering {file}"))?;
        let p = dir.join(file);
        std::fs::write(&p, buf).with_context(|| format!("writing {}", p.display()))?;
        Ok(p)
    };
    // Built, so the global options (--json, --control-socket) appear on
    // every verb's page too.
    let mut cmd = cmd.clone();
    cmd.build();
    let name = cmd.get_name().to_string();
    written.push(render(cmd.clone(), &format!("{name}.8"))?);
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let full = format!("{name}-{}", sub.get_name());
        // clap wants 'static names here (without its `string` feature); a
        // few bytes per page, once.
        let leaked: &'static str = Box::leak(full.clone().into_boxed_str());
        let page = sub.clone().name(leaked).display_name(leaked);
        written.push(render(page, &format!("{full}.8"))?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pages_and_completions_are_generated() {
        let dir = std::env::temp_dir().join(format!("lb-man-{}", std::process::id()));
        let written = super::generate(&dir).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        for want in [
            "lbd.8",
            "lbctl.8",
            "lbctl-set-weight.8",
            "lbctl.bash",
            "_lbctl",
            "lbctl.fish",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing from {names:?}"
            );
        }
        let page = std::fs::read_to_string(dir.join("man/lbctl-backends.8")).unwrap();
        assert!(page.contains("lbctl\\-backends"), "{page}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
