//! The keepalived.conf lexer, parser and model builder never panic, and
//! every error they report carries a location inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Includes resolve relative to a directory that does not exist, so
    // the fuzzer cannot wander the filesystem.
    let path = std::path::Path::new("/nonexistent-lb-fuzz/fuzz.conf");
    if let Err(diags) = lb_daemon::config::parse_str(text, path) {
        // Line breaks as keepalived.conf files have them: \n, \r\n, \r.
        let breaks = text.matches('\n').count() + text.matches('\r').count()
            - text.matches("\r\n").count();
        let lines = breaks as u32 + 1;
        for d in &diags.0 {
            assert!(d.line >= 1 && d.col >= 1, "{d}");
            if d.file == path {
                assert!(d.line <= lines, "{d} beyond {lines} lines");
            }
        }
    }
});
