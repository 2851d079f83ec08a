//! The IPVS sync decoder never panics, and what it accepts encodes back to a
//! message that decodes to the same records.
#![no_main]

use lb_daemon::connsync::packet::{decode, MessageBuilder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode(data, 0) {
        let mut b = MessageBuilder::new(msg.syncid, 65_535);
        for c in &msg.conns {
            b.push(c).expect("a decoded record encodes");
        }
        let again = decode(&b.finish(), 0).expect("an encoded message decodes");
        assert_eq!(again.conns, msg.conns);
    }
});
