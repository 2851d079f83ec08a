//! The XDP object built from `lb-ebpf`, embedded at build time.

/// The ELF bytes, or empty when the daemon was built without it.
pub static EMBEDDED: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/lb-ebpf.o"));

/// The embedded object, or an error telling how to get one.
pub fn embedded() -> Result<&'static [u8], crate::dataplane::DataplaneError> {
    if EMBEDDED.is_empty() {
        Err(crate::dataplane::DataplaneError::NoObject)
    } else {
        Ok(EMBEDDED)
    }
}
