//! Garbage in, no panic out: random and mutated buffers through every
//! decoder, and whatever decodes through an instance. Deterministic: a
//! fixed-seed xorshift, no dependencies.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::super::instance::{Event, Instance};
use super::super::packet::{
    decode, decode_ipv4, encode, peek_vrid, Advert, AdvertInterval, Auth, PseudoHeader, Version,
    MCAST_GROUP_V4, MCAST_GROUP_V6,
};
use super::super::params::InstanceParams;
use super::ip_packet_of_frame;

/// xorshift64 (Marsaglia): tiny and good enough to shake a parser.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}

const SEEDS: [&str; 6] = [
    include_str!("../testdata/v2-pass-lb1-prio100.hex"),
    include_str!("../testdata/v2-pass-lb2-prio50.hex"),
    include_str!("../testdata/v2-pass-lb1-prio0.hex"),
    include_str!("../testdata/v3-lb1-prio100.hex"),
    include_str!("../testdata/v3-lb2-prio50.hex"),
    include_str!("../testdata/v3-lb1-prio0.hex"),
];

fn pseudo_headers() -> [PseudoHeader; 3] {
    let lb1 = IpAddr::V4(Ipv4Addr::new(10, 98, 0, 1));
    let ll: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
    [
        PseudoHeader::new(lb1, MCAST_GROUP_V4.into()),
        PseudoHeader::new(ll, MCAST_GROUP_V6.into()),
        PseudoHeader::new(lb1, MCAST_GROUP_V6.into()),
    ]
}

/// Garbled variants of a valid packet: bit flips, byte changes, cuts,
/// extensions, and header fields set to edge values.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut buf = seed.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(6) {
            0 if !buf.is_empty() => {
                let i = rng.below(buf.len());
                buf[i] ^= 1 << rng.below(8);
            }
            1 if !buf.is_empty() => {
                let i = rng.below(buf.len());
                buf[i] = rng.byte();
            }
            2 => buf.truncate(rng.below(buf.len() + 1)),
            3 => {
                let len = rng.below(40);
                buf.extend(rng.bytes(len));
            }
            4 if buf.len() > 23 => {
                // IHL, total length, VRRP count: the length fields.
                let i = [0, 2, 3, 23][rng.below(4)];
                buf[i] = [0, 1, 0x0f, 0xff, 0x45][rng.below(5)];
            }
            _ => {}
        }
    }
    buf
}

fn instance() -> Instance {
    let mut p = InstanceParams::new(
        "fuzz",
        Version::V2,
        51,
        IpAddr::V4(Ipv4Addr::new(10, 98, 0, 2)),
        vec![IpAddr::V4(Ipv4Addr::new(10, 98, 0, 100))],
    );
    p.auth = Auth::pass(b"1111");
    let mut inst = Instance::new(p).expect("valid");
    inst.handle(Event::Startup, Instant::now());
    inst
}

#[test]
fn random_buffers_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let phs = pseudo_headers();
    let mut decoded = 0;
    for _ in 0..20_000 {
        let len = rng.below(120);
        let mut buf = rng.bytes(len);
        // Often make it look like VRRP so the parser gets past the first
        // byte, or like an IPv4 VRRP packet.
        match rng.below(3) {
            0 if !buf.is_empty() => buf[0] = [0x21, 0x31][rng.below(2)],
            1 if buf.len() >= 20 => {
                buf[0] = 0x45;
                buf[8] = 255;
                buf[9] = 112;
            }
            _ => {}
        }
        let _ = peek_vrid(&buf);
        let _ = decode_ipv4(&buf);
        for ph in &phs {
            if decode(&buf, ph).is_ok() {
                decoded += 1;
            }
        }
    }
    // Random bytes almost never carry a valid checksum.
    assert!(decoded < 100, "{decoded}");
}

#[test]
fn mutated_captures_never_panic_and_reach_the_state_machine_safely() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let seeds: Vec<Vec<u8>> = SEEDS.iter().map(|h| ip_packet_of_frame(h)).collect();
    let mut inst = instance();
    let t0 = Instant::now();
    let phs = pseudo_headers();
    for n in 0..20_000u32 {
        let seed = &seeds[rng.below(seeds.len())];
        let buf = mutate(&mut rng, seed);
        let now = t0 + Duration::from_millis(u64::from(n) * 10);
        match decode_ipv4(&buf) {
            Ok(received) => {
                inst.handle(
                    Event::AdvertReceived {
                        src: received.src.into(),
                        advert: received.advert,
                    },
                    now,
                );
            }
            Err(err) => inst.note_decode_error(IpAddr::V4(Ipv4Addr::new(10, 98, 0, 1)), &err),
        }
        if buf.len() > 20 {
            for ph in &phs {
                let _ = decode(&buf[20..], ph);
            }
        }
        inst.handle(Event::TimerFired, now);
    }
    assert!(inst.counters().total_dropped() > 0);
}

/// Random valid adverts survive encode -> decode unchanged.
#[test]
fn random_adverts_round_trip() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let phs = pseudo_headers();
    for _ in 0..5_000 {
        let ph = phs[rng.below(2)];
        let ipv6 = ph.src.is_ipv6();
        let version = if ipv6 || rng.below(2) == 0 {
            Version::V3
        } else {
            Version::V2
        };
        let count = rng.below(20);
        let addrs = (0..count)
            .map(|_| {
                if ipv6 {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(&rng.bytes(16));
                    IpAddr::V6(Ipv6Addr::from(o))
                } else {
                    let o = rng.bytes(4);
                    IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3]))
                }
            })
            .collect();
        let (max_advert_int, auth) = match version {
            Version::V2 => {
                let mut data = [0u8; 8];
                data.copy_from_slice(&rng.bytes(8));
                let auth = match rng.below(3) {
                    0 => Auth::None,
                    1 => Auth::Pass(data),
                    _ => Auth::Other {
                        auth_type: 2 + rng.byte() % 254,
                        data,
                    },
                };
                (AdvertInterval::from_secs(rng.byte()), auth)
            }
            Version::V3 => (
                AdvertInterval::from_centis(rng.below(4096) as u16),
                Auth::None,
            ),
        };
        let advert = Advert {
            version,
            vrid: rng.byte(),
            priority: rng.byte(),
            max_advert_int,
            addrs,
            auth,
        };
        let bytes = encode(&advert, &ph).expect("valid advert encodes");
        assert_eq!(decode(&bytes, &ph), Ok(advert));
    }
}
