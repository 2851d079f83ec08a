//! Embeds the eBPF object in the daemon, so `lbd` is one self-contained
//! binary. The object is built here from `lb-ebpf`'s sources (as aya's
//! `aya-build` does), so a `cargo build` or `cargo test` can never embed a
//! stale or empty one; `LB_EBPF_OBJECT` names a prebuilt object instead
//! (`cargo xtask` builds it once and passes it that way).
use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=LB_EBPF_OBJECT");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .expect("lb-daemon is inside the repository");
    let path = match env::var_os("LB_EBPF_OBJECT") {
        Some(p) => {
            println!("cargo:rerun-if-changed={}", PathBuf::from(&p).display());
            PathBuf::from(p)
        }
        // The object itself is not an input here: it is written while this
        // script runs, and cargo would take that as a change next time.
        None => {
            for input in lb_build::inputs(root) {
                println!("cargo:rerun-if-changed={}", input.display());
            }
            match lb_build::build(root) {
                Ok(obj) => obj,
                Err(e) => fail(&e.to_string()),
            }
        }
    };
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) => fail(&format!("reading the eBPF object {}: {e}", path.display())),
    };
    if bytes.is_empty() {
        fail(&format!("the eBPF object {} is empty", path.display()));
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("lb-ebpf.o");
    // Written only when it changed, so an unchanged object does not make
    // cargo recompile the daemon.
    if fs::read(&out).ok().as_deref() != Some(&bytes[..]) {
        fs::write(&out, &bytes).expect("write embedded eBPF object");
    }
}

fn fail(why: &str) -> ! {
    eprintln!("error: {why}");
    println!("cargo:warning={why}");
    std::process::exit(1);
}
