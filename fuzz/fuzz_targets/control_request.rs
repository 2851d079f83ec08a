//! The control protocol's request reader never panics on any line; what it
//! accepts is a request lbd can answer (set-weight within keepalived's
//! range) that reads back the same once written, and what it refuses comes
//! with an error response that serialises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lb_daemon::control::protocol::{parse_request, Command, MAX_LINE, MAX_WEIGHT};

fuzz_target!(|data: &[u8]| {
    // lbd never hands the reader more than one line of MAX_LINE bytes.
    if data.len() > MAX_LINE || data.contains(&b'\n') {
        return;
    }
    match parse_request(data) {
        Ok(request) => {
            if let Command::SetWeight { weight, .. } = request.command {
                assert!(weight <= MAX_WEIGHT);
            }
            let line = serde_json::to_vec(&request).expect("a request serialises");
            assert_eq!(parse_request(&line).expect("reads back"), request);
        }
        Err(refusal) => {
            assert!(!refusal.ok);
            assert!(refusal.error.is_some());
            serde_json::to_vec(&refusal).expect("a refusal serialises");
        }
    }
});
