//! The VRRP decoders never panic, and what they accept encodes back to a
//! packet that decodes to the same advert.
#![no_main]

use lb_daemon::vrrp::{decode, decode_ipv4, encode, PseudoHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_ipv4(data);
    let ph = PseudoHeader::new("10.0.0.1".parse().unwrap(), "224.0.0.18".parse().unwrap());
    if let Ok(advert) = decode(data, &ph) {
        if let Ok(bytes) = encode(&advert, &ph) {
            assert_eq!(decode(&bytes, &ph).ok(), Some(advert));
        }
    }
    let ph6 = PseudoHeader::new("fe80::1".parse().unwrap(), "ff02::12".parse().unwrap());
    let _ = decode(data, &ph6);
});
