use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::super::packet::{
    check_hop_limit, decode, decode_ipv4, encode, encode_ipv4, peek_vrid, Advert, AdvertInterval,
    Auth, DecodeError, EncodeError, PseudoHeader, Version, MCAST_GROUP_V4, MCAST_GROUP_V6,
};
use super::super::reason::DropReason;
use super::{ip_packet_of_frame, v4};

const V2_LB1_PRIO100: &str = include_str!("../testdata/v2-pass-lb1-prio100.hex");
const V2_LB2_PRIO50: &str = include_str!("../testdata/v2-pass-lb2-prio50.hex");
const V2_LB1_PRIO0: &str = include_str!("../testdata/v2-pass-lb1-prio0.hex");
const V3_LB1_PRIO100: &str = include_str!("../testdata/v3-lb1-prio100.hex");
const V3_LB2_PRIO50: &str = include_str!("../testdata/v3-lb2-prio50.hex");
const V3_LB1_PRIO0: &str = include_str!("../testdata/v3-lb1-prio0.hex");

const LB1: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 1);
const LB2: Ipv4Addr = Ipv4Addr::new(10, 98, 0, 2);

fn vip() -> IpAddr {
    v4(10, 98, 0, 100)
}

fn expected_v2(priority: u8) -> Advert {
    Advert {
        version: Version::V2,
        vrid: 51,
        priority,
        max_advert_int: AdvertInterval::from_secs(1),
        addrs: vec![vip()],
        auth: Auth::pass(b"1111"),
    }
}

fn expected_v3(priority: u8) -> Advert {
    Advert {
        version: Version::V3,
        vrid: 51,
        priority,
        max_advert_int: AdvertInterval::from_centis(10),
        addrs: vec![vip()],
        auth: Auth::None,
    }
}

/// Decodes a captured frame, checks it, and re-encodes the whole IP packet
/// (header included) to the identical bytes.
fn check_capture(frame_hex: &str, src: Ipv4Addr, ip_id: u16, expected: &Advert) {
    let packet = ip_packet_of_frame(frame_hex);
    let got = decode_ipv4(&packet).expect("capture decodes");
    assert_eq!(got.src, src);
    assert_eq!(got.dst, MCAST_GROUP_V4);
    assert_eq!(&got.advert, expected);

    let reencoded = encode_ipv4(&got.advert, got.src, got.dst, ip_id).expect("encodes");
    assert_eq!(reencoded, packet, "IP packet round trip");

    let ph = PseudoHeader::new(src.into(), MCAST_GROUP_V4.into());
    assert_eq!(
        encode(expected, &ph).expect("encodes"),
        packet[20..].to_vec()
    );
}

#[test]
fn keepalived_v2_pass_adverts_decode_and_round_trip() {
    check_capture(V2_LB1_PRIO100, LB1, 1, &expected_v2(100));
    check_capture(V2_LB2_PRIO50, LB2, 1, &expected_v2(50));
}

#[test]
fn keepalived_v2_priority_zero_advert() {
    check_capture(V2_LB1_PRIO0, LB1, 4, &expected_v2(0));
}

#[test]
fn keepalived_v2_password_is_zero_padded_1111() {
    let packet = ip_packet_of_frame(V2_LB1_PRIO100);
    let advert = decode_ipv4(&packet).expect("decodes").advert;
    assert_eq!(advert.auth, Auth::Pass(*b"1111\0\0\0\0"));
    assert_eq!(advert.auth.type_code(), 1);
}

#[test]
fn keepalived_v3_adverts_decode_with_tenth_second_interval() {
    check_capture(V3_LB1_PRIO100, LB1, 1, &expected_v3(100));
    check_capture(V3_LB2_PRIO50, LB2, 1, &expected_v3(50));
    let advert = decode_ipv4(&ip_packet_of_frame(V3_LB1_PRIO100))
        .expect("decodes")
        .advert;
    assert_eq!(advert.max_advert_int.as_duration().as_millis(), 100);
}

#[test]
fn keepalived_v3_priority_zero_advert() {
    check_capture(V3_LB1_PRIO0, LB1, 13, &expected_v3(0));
}

#[test]
fn v3_checksum_covers_the_real_destination() {
    let packet = ip_packet_of_frame(V3_LB1_PRIO100);
    let payload = &packet[20..];
    // The same bytes sent unicast to lb2 would carry another checksum.
    let unicast = PseudoHeader::new(LB1.into(), LB2.into());
    let err = decode(payload, &unicast).expect_err("checksum is for the group");
    match err {
        DecodeError::BadChecksum { got, expected } => {
            assert_eq!(got, 0x7509);
            assert_ne!(expected, got);
            assert_eq!(
                err.to_string(),
                format!("bad checksum 0x7509, expected {expected:#06x}")
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // Encoding for the unicast peer gives a packet that verifies there.
    let advert = expected_v3(100);
    let bytes = encode(&advert, &unicast).expect("encodes");
    assert_eq!(decode(&bytes, &unicast), Ok(advert));
}

#[test]
fn v2_checksum_ignores_the_pseudo_header() {
    let packet = ip_packet_of_frame(V2_LB1_PRIO100);
    let elsewhere = PseudoHeader::new(v4(192, 0, 2, 1), v4(192, 0, 2, 2));
    assert_eq!(decode(&packet[20..], &elsewhere), Ok(expected_v2(100)));
}

#[test]
fn corrupted_byte_fails_checksum() {
    let mut packet = ip_packet_of_frame(V2_LB1_PRIO100);
    packet[20 + 2] = 101; // priority
    let err = decode_ipv4(&packet).expect_err("corrupted");
    assert_eq!(
        err,
        DecodeError::BadChecksum {
            got: 0x0ca2,
            expected: 0x0ba2
        }
    );
    assert_eq!(err.reason(), DropReason::BadChecksum);
    assert_eq!(err.to_string(), "bad checksum 0x0ca2, expected 0x0ba2");
}

#[test]
fn checksum_0xffff_is_taken_for_zero() {
    // Find an advert whose checksum is 0x0000 and send it as 0xffff, the
    // other one's complement zero; keepalived's verification accepts both.
    let ph = PseudoHeader::new(LB1.into(), MCAST_GROUP_V4.into());
    let found = (0..=255u8).find_map(|priority| {
        let mut advert = expected_v3(priority);
        (0..=255u8).find_map(|vrid| {
            advert.vrid = vrid;
            let bytes = encode(&advert, &ph).ok()?;
            (bytes[6..8] == [0, 0]).then(|| (advert.clone(), bytes))
        })
    });
    let (advert, mut bytes) = found.expect("some advert sums to zero");
    bytes[6] = 0xff;
    bytes[7] = 0xff;
    assert_eq!(decode(&bytes, &ph), Ok(advert));
}

#[test]
fn ttl_other_than_255_is_rejected() {
    let mut packet = ip_packet_of_frame(V2_LB1_PRIO100);
    packet[8] = 254;
    let err = decode_ipv4(&packet).expect_err("routed advert");
    assert_eq!(err, DecodeError::BadTtl(254));
    assert_eq!(err.reason(), DropReason::BadTtl);
    assert_eq!(err.to_string(), "TTL/hop limit 254, expected 255");
    assert_eq!(check_hop_limit(255), Ok(()));
    assert_eq!(check_hop_limit(1), Err(DecodeError::BadTtl(1)));
}

#[test]
fn other_ip_protocols_are_rejected() {
    let mut packet = ip_packet_of_frame(V2_LB1_PRIO100);
    packet[9] = 51; // IPsec AH
    assert_eq!(decode_ipv4(&packet), Err(DecodeError::NotVrrp(51)));
    assert_eq!(DecodeError::NotVrrp(51).reason(), DropReason::NotVrrp);
}

#[test]
fn wrong_vrrp_version_and_type_are_rejected() {
    let packet = ip_packet_of_frame(V2_LB1_PRIO100);
    let ph = PseudoHeader::new(LB1.into(), MCAST_GROUP_V4.into());
    let mut payload = packet[20..].to_vec();
    payload[0] = 0x41;
    assert_eq!(
        decode(&payload, &ph),
        Err(DecodeError::UnsupportedVersion(4))
    );
    payload[0] = 0x22;
    assert_eq!(decode(&payload, &ph), Err(DecodeError::WrongType(2)));
    assert_eq!(DecodeError::WrongType(2).reason(), DropReason::WrongType);
    assert_eq!(
        DecodeError::UnsupportedVersion(4).reason(),
        DropReason::WrongVersion
    );
}

#[test]
fn length_must_match_address_count() {
    let packet = ip_packet_of_frame(V3_LB1_PRIO100);
    let ph = PseudoHeader::new(LB1.into(), MCAST_GROUP_V4.into());
    let payload = &packet[20..];
    assert_eq!(
        decode(&payload[..payload.len() - 1], &ph),
        Err(DecodeError::LengthMismatch {
            len: 11,
            expected: 12,
            count: 1
        })
    );
    let mut longer = payload.to_vec();
    longer[3] = 2; // claims two addresses
    assert_eq!(
        decode(&longer, &ph).map_err(|e| e.reason()),
        Err(DropReason::BadLength)
    );
    assert_eq!(
        decode(&payload[..5], &ph),
        Err(DecodeError::Truncated { len: 5, need: 8 })
    );
}

#[test]
fn ethernet_padding_after_a_short_packet_is_tolerated() {
    // A 32-byte v3 packet arrives padded to the 46-byte minimum payload.
    let mut packet = ip_packet_of_frame(V3_LB1_PRIO100);
    packet.resize(46, 0);
    assert_eq!(
        decode_ipv4(&packet).expect("padded").advert,
        expected_v3(100)
    );
    // A longer packet has no business carrying trailing bytes.
    packet.resize(47, 0);
    assert_eq!(
        decode_ipv4(&packet),
        Err(DecodeError::IpLengthMismatch {
            total_len: 32,
            received: 47
        })
    );
}

#[test]
fn broken_ip_headers_are_rejected() {
    let packet = ip_packet_of_frame(V2_LB1_PRIO100);
    assert!(matches!(
        decode_ipv4(&packet[..10]),
        Err(DecodeError::Truncated { len: 10, need: 20 })
    ));
    let mut bad = packet.clone();
    bad[0] = 0x65;
    assert_eq!(decode_ipv4(&bad), Err(DecodeError::NotIpv4(6)));
    bad[0] = 0x44;
    assert_eq!(decode_ipv4(&bad), Err(DecodeError::BadIpHeaderLength(16)));
    assert_eq!(
        DecodeError::BadIpHeaderLength(16).reason(),
        DropReason::Malformed
    );
}

#[test]
fn ip_options_are_skipped() {
    // Same advert behind a 24-byte header (one NOP-padded option word).
    let packet = ip_packet_of_frame(V2_LB1_PRIO100);
    let mut with_options = packet[..20].to_vec();
    with_options[0] = 0x46;
    with_options[3] += 4;
    with_options.extend_from_slice(&[1, 1, 1, 0]);
    with_options.extend_from_slice(&packet[20..]);
    assert_eq!(
        decode_ipv4(&with_options).expect("decodes").advert,
        expected_v2(100)
    );
}

#[test]
fn peek_vrid_reads_broken_messages() {
    let packet = ip_packet_of_frame(V2_LB1_PRIO100);
    assert_eq!(peek_vrid(&packet[20..22]), Some(51));
    assert_eq!(peek_vrid(&[0x21]), None);
}

fn ipv6_advert() -> Advert {
    Advert {
        version: Version::V3,
        vrid: 7,
        priority: 150,
        max_advert_int: AdvertInterval::from_centis(100),
        addrs: vec![
            "fe80::100".parse().expect("address"),
            "2001:db8::100".parse().expect("address"),
        ],
        auth: Auth::None,
    }
}

/// An independent one's complement check: the sum over the IPv6
/// pseudo-header and the message, checksum included, must be all ones.
fn ipv6_checksum_verifies(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> bool {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&src.octets());
    bytes.extend_from_slice(&dst.octets());
    bytes.extend_from_slice(&(message.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 0, 112]);
    bytes.extend_from_slice(message);
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(w[0]) << 8 | u32::from(*w.get(1).unwrap_or(&0)))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum == 0xffff
}

#[test]
fn ipv6_v3_round_trip_with_checksum() {
    let src: Ipv6Addr = "fe80::2".parse().expect("address");
    let ph = PseudoHeader::new(src.into(), MCAST_GROUP_V6.into());
    let advert = ipv6_advert();
    let bytes = encode(&advert, &ph).expect("encodes");
    assert_eq!(bytes.len(), 8 + 2 * 16);
    assert_eq!(&bytes[..6], &[0x31, 7, 150, 2, 0x00, 0x64]);
    assert!(ipv6_checksum_verifies(src, MCAST_GROUP_V6, &bytes));
    assert_eq!(decode(&bytes, &ph), Ok(advert.clone()));
    assert_eq!(
        encode(&decode(&bytes, &ph).expect("decodes"), &ph),
        Ok(bytes.clone())
    );

    // The pseudo-header is part of it: another source fails.
    let other = PseudoHeader::new("fe80::3".parse::<IpAddr>().expect("address"), ph.dst);
    assert!(matches!(
        decode(&bytes, &other),
        Err(DecodeError::BadChecksum { .. })
    ));
}

#[test]
fn v2_is_ipv4_only() {
    let ph6 = PseudoHeader::new(
        "fe80::2".parse::<IpAddr>().expect("address"),
        MCAST_GROUP_V6.into(),
    );
    let mut advert = ipv6_advert();
    advert.version = Version::V2;
    advert.max_advert_int = AdvertInterval::from_secs(1);
    assert_eq!(encode(&advert, &ph6), Err(EncodeError::V2OverIpv6));
    let mut bytes = encode(&ipv6_advert(), &ph6).expect("encodes");
    bytes[0] = 0x21;
    assert_eq!(decode(&bytes, &ph6), Err(DecodeError::V2OverIpv6));
}

#[test]
fn mixed_families_are_rejected() {
    let mixed = PseudoHeader::new(LB1.into(), MCAST_GROUP_V6.into());
    let packet = ip_packet_of_frame(V3_LB1_PRIO100);
    assert!(matches!(
        decode(&packet[20..], &mixed),
        Err(DecodeError::FamilyMismatch { .. })
    ));
    let ph = PseudoHeader::new(LB1.into(), MCAST_GROUP_V4.into());
    let advert = ipv6_advert();
    assert!(matches!(
        encode(&advert, &ph),
        Err(EncodeError::FamilyMismatch { .. })
    ));
}

#[test]
fn encode_rejects_what_the_wire_cannot_carry() {
    let ph = PseudoHeader::new(LB1.into(), MCAST_GROUP_V4.into());
    let mut v3 = expected_v3(100);
    v3.max_advert_int = AdvertInterval::from_centis(4096);
    assert!(matches!(
        encode(&v3, &ph),
        Err(EncodeError::IntervalOutOfRange { .. })
    ));
    v3.max_advert_int = AdvertInterval::from_centis(4095);
    assert!(encode(&v3, &ph).is_ok());
    v3.auth = Auth::pass(b"x");
    assert_eq!(encode(&v3, &ph), Err(EncodeError::AuthOnV3(1)));

    let mut v2 = expected_v2(100);
    v2.max_advert_int = AdvertInterval::from_centis(150);
    assert!(matches!(
        encode(&v2, &ph),
        Err(EncodeError::IntervalOutOfRange { .. })
    ));
    v2.max_advert_int = AdvertInterval::from_secs(255);
    v2.addrs = (0..=255u8).map(|i| v4(10, 0, 0, i)).collect();
    assert_eq!(encode(&v2, &ph), Err(EncodeError::TooManyAddresses(256)));
    v2.addrs.pop();
    let bytes = encode(&v2, &ph).expect("255 addresses fit");
    assert_eq!(decode(&bytes, &ph), Ok(v2));
}

#[test]
fn v3_reserved_interval_bits_are_ignored() {
    let ph = PseudoHeader::new(LB1.into(), MCAST_GROUP_V4.into());
    let advert = expected_v3(100);
    let mut bytes = encode(&advert, &ph).expect("encodes");
    bytes[4] |= 0xf0;
    // Fix the checksum up for the changed reserved bits.
    bytes[6..8].copy_from_slice(&[0, 0]);
    let expected = match decode(&bytes, &ph) {
        Err(DecodeError::BadChecksum { expected, .. }) => expected,
        other => panic!("unexpected {other:?}"),
    };
    bytes[6..8].copy_from_slice(&expected.to_be_bytes());
    assert_eq!(decode(&bytes, &ph), Ok(advert));
}

#[test]
fn other_v2_auth_types_decode_as_other() {
    let ph = PseudoHeader::new(LB1.into(), MCAST_GROUP_V4.into());
    let advert = Advert {
        auth: Auth::Other {
            auth_type: 2,
            data: [1, 2, 3, 4, 5, 6, 7, 8],
        },
        ..expected_v2(100)
    };
    let bytes = encode(&advert, &ph).expect("encodes");
    assert_eq!(decode(&bytes, &ph), Ok(advert));
    // Type 0 is sent with zero auth data.
    let none = Advert {
        auth: Auth::None,
        ..expected_v2(100)
    };
    let bytes = encode(&none, &ph).expect("encodes");
    assert_eq!(&bytes[bytes.len() - 8..], &[0; 8]);
    assert_eq!(decode(&bytes, &ph), Ok(none));
}

#[test]
fn passwords_longer_than_eight_bytes_are_cut() {
    assert_eq!(Auth::pass(b"0123456789"), Auth::Pass(*b"01234567"));
    assert_eq!(Auth::pass(b""), Auth::Pass([0; 8]));
}

#[test]
fn advert_interval_units() {
    assert_eq!(AdvertInterval::from_secs(3).centis(), 300);
    assert_eq!(AdvertInterval::from_secs(3).whole_secs(), Some(3));
    assert_eq!(AdvertInterval::from_centis(250).whole_secs(), None);
    assert_eq!(AdvertInterval::from_centis(25600).whole_secs(), None);
    assert_eq!(AdvertInterval::from_centis(10).to_string(), "0.10 s");
    assert_eq!(AdvertInterval::from_secs(255).as_duration().as_secs(), 255);
}

#[test]
fn drop_reason_labels_are_unique_snake_case() {
    let labels: std::collections::BTreeSet<&str> =
        DropReason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(labels.len(), DropReason::ALL.len());
    for reason in DropReason::ALL {
        assert!(reason
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_'));
        assert_eq!(reason.to_string(), reason.as_str());
    }
    assert!(DropReason::WrongVrid.is_silent());
    assert!(!DropReason::BadChecksum.is_silent());
}
