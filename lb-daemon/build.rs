//! Embeds the eBPF object in the daemon, so `lbd` is one self-contained
//! binary. `cargo xtask build-ebpf` produces it; LB_EBPF_OBJECT overrides the
//! path. Without it the daemon still builds (host unit tests need no BPF) and
//! says at start-up that it has no data plane object.
use std::{env, fs, path::PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=LB_EBPF_OBJECT");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let path = env::var_os("LB_EBPF_OBJECT")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../lb-ebpf/target/bpfel-unknown-none/release/lb-ebpf"));
    println!("cargo:rerun-if-changed={}", path.display());
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("lb-ebpf.o");
    match fs::read(&path) {
        Ok(bytes) => fs::write(&out, bytes).expect("write embedded eBPF object"),
        Err(_) => {
            println!(
                "cargo:warning=no eBPF object at {}: lbd is built without a data plane (run `cargo xtask build`)",
                path.display()
            );
            fs::write(&out, []).expect("write empty eBPF object");
        }
    }
}
