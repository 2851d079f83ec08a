use super::*;

fn tcp_v4() -> SyncConn {
    SyncConn {
        protocol: 6,
        flags: flags::DROUTE,
        state: state::TCP_ESTABLISHED,
        client: "198.51.100.7:40000".parse().unwrap(),
        vip: "192.0.2.100:80".parse().unwrap(),
        dest: "192.0.2.11:80".parse().unwrap(),
        fwmark: 0,
        timeout: 900,
        seq: None,
        pe_data: None,
        pe_name: None,
    }
}

fn udp_v6() -> SyncConn {
    SyncConn {
        protocol: 17,
        flags: flags::TUNNEL,
        state: state::UDP_NORMAL,
        client: "[2001:db8::7]:5353".parse().unwrap(),
        vip: "[2001:db8::100]:53".parse().unwrap(),
        dest: "[2001:db8::11]:53".parse().unwrap(),
        fwmark: 7,
        timeout: 300,
        seq: None,
        pe_data: None,
        pe_name: None,
    }
}

fn template_v4() -> SyncConn {
    SyncConn {
        protocol: 6,
        flags: flags::TEMPLATE | flags::MASQ | flags::NO_CPORT,
        state: state::TEMPLATE_NONE,
        client: "198.51.100.0:0".parse().unwrap(),
        vip: "192.0.2.100:443".parse().unwrap(),
        dest: "10.0.0.11:443".parse().unwrap(),
        fwmark: 0,
        timeout: 360,
        seq: None,
        pe_data: None,
        pe_name: None,
    }
}

fn message(conns: &[SyncConn], syncid: u8) -> Vec<u8> {
    let mut b = MessageBuilder::new(syncid, default_send_maxlen(false));
    for c in conns {
        b.push(c).unwrap();
    }
    b.finish()
}

#[test]
fn an_ipv4_record_has_the_kernels_layout() {
    let bytes = message(&[tcp_v4()], 5);
    #[rustfmt::skip]
    let want: Vec<u8> = vec![
        // header: reserved, syncid, size, count, version, spare
        0, 5, 0, 44, 1, 1, 0, 0,
        // type, protocol, version 0 and size 36
        0, 6, 0, 36,
        // flags (DROUTE), state (ESTABLISHED)
        0, 0, 0, 3, 0, 1,
        // client, virtual, destination ports
        0x9c, 0x40, 0, 80, 0, 80,
        // fwmark, timeout
        0, 0, 0, 0, 0, 0, 0x03, 0x84,
        // addresses
        198, 51, 100, 7, 192, 0, 2, 100, 192, 0, 2, 11,
    ];
    assert_eq!(bytes, want);
}

#[test]
fn records_round_trip_in_both_families_with_templates_and_options() {
    let mut with_seq = tcp_v4();
    with_seq.flags |= flags::IN_SEQ | flags::OUT_SEQ;
    let seq = SeqAdjust {
        init_seq: 1,
        delta: 2,
        previous_delta: 3,
    };
    with_seq.seq = Some((seq, SeqAdjust { init_seq: 4, ..seq }));
    let mut with_pe = udp_v6();
    with_pe.pe_data = Some(vec![1, 2, 3]);
    with_pe.pe_name = Some(b"sip".to_vec());
    let conns = vec![tcp_v4(), udp_v6(), template_v4(), with_pe, with_seq];
    let bytes = message(&conns, 9);
    assert_eq!(
        usize::from(u16::from_be_bytes([bytes[2], bytes[3]])),
        bytes.len()
    );
    let msg = decode(&bytes, 9).unwrap();
    assert_eq!(msg.syncid, 9);
    assert_eq!(msg.conns, conns);
    assert!(msg.skipped.is_empty());
    // Any sync id is heard when this node listens for 0, as in the kernel.
    assert_eq!(decode(&bytes, 0).unwrap().conns.len(), 5);
}

#[test]
fn records_start_on_four_byte_boundaries() {
    let mut odd = udp_v6();
    odd.pe_data = Some(vec![9]);
    odd.pe_name = None;
    let bytes = message(&[odd.clone(), tcp_v4()], 1);
    // 8 header + 72 + 3 (option) = 83, padded to 84 for the next record.
    let second = HEADER_LEN + ((RECORD_V6_LEN + 3 + 3) & !3);
    assert_eq!(&bytes[second..second + 4], &[0, 6, 0, 36]);
    assert_eq!(bytes[second - 1], 0, "padding is zero");
    assert_eq!(decode(&bytes, 1).unwrap().conns, vec![odd, tcp_v4()]);
}

#[test]
fn a_message_fills_up_to_maxlen_and_255_records() {
    let mut b = MessageBuilder::new(0, HEADER_LEN + 2 * RECORD_V4_LEN);
    b.push(&tcp_v4()).unwrap();
    b.push(&tcp_v4()).unwrap();
    assert_eq!(b.push(&tcp_v4()), Err(EncodeError::Full));
    assert_eq!(b.count(), 2);
    assert_eq!(b.finish().len(), HEADER_LEN + 2 * RECORD_V4_LEN);

    let mut b = MessageBuilder::new(0, 65_000);
    for _ in 0..255 {
        b.push(&tcp_v4()).unwrap();
    }
    assert_eq!(b.push(&tcp_v4()), Err(EncodeError::Full));
    assert_eq!(decode(&b.finish(), 0).unwrap().conns.len(), 255);
}

#[test]
fn the_builder_refuses_what_it_cannot_encode() {
    let mut mixed = tcp_v4();
    mixed.dest = "[2001:db8::1]:80".parse().unwrap();
    let mut b = MessageBuilder::new(0, 1472);
    assert_eq!(b.push(&mixed), Err(EncodeError::MixedFamilies));
    let mut long_name = udp_v6();
    long_name.pe_data = Some(vec![1]);
    long_name.pe_name = Some(vec![b'x'; 17]);
    assert_eq!(b.push(&long_name), Err(EncodeError::OptionTooLong(17)));
    assert!(b.is_empty());
}

#[test]
fn default_maxlen_follows_the_kernel() {
    assert_eq!(default_send_maxlen(false), 1472);
    assert_eq!(default_send_maxlen(true), 1452);
    assert_eq!(default_recv_maxlen(9000, false), 8972);
    assert_eq!(default_recv_maxlen(1280, false), 1472);
}

#[test]
fn a_bad_header_refuses_the_datagram() {
    let good = message(&[tcp_v4()], 5);
    assert_eq!(decode(&good[..3], 0), Err(DecodeError::TooShort(3)));

    let mut longer = good.clone();
    longer.push(0);
    assert_eq!(
        decode(&longer, 0),
        Err(DecodeError::SizeMismatch {
            header: good.len(),
            datagram: good.len() + 1
        })
    );
    assert_eq!(
        decode(&good, 6),
        Err(DecodeError::OtherSyncId { got: 5, want: 6 })
    );
    for (at, value) in [(0, 1u8), (5, 0), (6, 1), (7, 1)] {
        let mut v = good.clone();
        v[at] = value;
        assert_eq!(
            decode(&v, 0),
            Err(DecodeError::Version0),
            "byte {at} = {value}"
        );
    }
    // A version 0 header: count, syncid, size.
    assert_eq!(decode(&[1, 5, 0, 4], 0), Err(DecodeError::Version0));
}

#[test]
fn bad_framing_anywhere_refuses_the_whole_datagram() {
    let good = message(&[tcp_v4(), tcp_v4()], 0);
    let second = HEADER_LEN + RECORD_V4_LEN;
    let set_size = |v: &mut Vec<u8>| {
        let n = v.len() as u16;
        v[2..4].copy_from_slice(&n.to_be_bytes());
    };

    // More records announced than the message holds.
    let mut v = good.clone();
    v[4] = 3;
    assert_eq!(decode(&v, 0), Err(DecodeError::RecordOverrun { index: 2 }));

    // A record whose size runs past the end.
    let mut v = good.clone();
    v[second + 3] = 40;
    assert_eq!(decode(&v, 0), Err(DecodeError::RecordOverrun { index: 1 }));

    // A record of another version.
    let mut v = good.clone();
    v[second + 2] = 0x10;
    assert_eq!(
        decode(&v, 0),
        Err(DecodeError::RecordVersion {
            index: 1,
            version: 1
        })
    );

    // An unknown address type.
    let mut v = good.clone();
    v[second] = 2;
    assert_eq!(
        decode(&v, 0),
        Err(DecodeError::AddressType { index: 1, kind: 2 })
    );

    // An IPv6 record too short for its addresses.
    let mut v = good.clone();
    v[second] = 1;
    assert_eq!(
        decode(&v, 0),
        Err(DecodeError::RecordTooShort { index: 1, size: 36 })
    );

    // Options: zero length, past the record, a sequence option of the
    // wrong length, a lone type byte.
    for option in [
        &[OPT_PE_DATA, 0, 0, 0][..],
        &[OPT_PE_DATA, 9, 1, 1],
        &[OPT_SEQ_DATA, 2, 0, 0],
    ] {
        let mut v = good.clone();
        v.extend_from_slice(option);
        v[second + 3] = (RECORD_V4_LEN + option.len()) as u8;
        set_size(&mut v);
        assert_eq!(
            decode(&v, 0),
            Err(DecodeError::BadOption {
                index: 1,
                kind: option[0]
            }),
            "{option:?}"
        );
    }
    let mut v = good.clone();
    v.push(OPT_PE_DATA);
    v[second + 3] = (RECORD_V4_LEN + 1) as u8;
    set_size(&mut v);
    assert_eq!(
        decode(&v, 0),
        Err(DecodeError::BadOption {
            index: 1,
            kind: OPT_PE_DATA
        })
    );
}

#[test]
fn unusable_records_are_skipped_and_the_rest_kept() {
    let with_option = |option: &[u8]| {
        let mut v = message(&[tcp_v4()], 0);
        v.extend_from_slice(option);
        v[HEADER_LEN + 3] = (RECORD_V4_LEN + option.len()) as u8;
        let n = v.len() as u16;
        v[2..4].copy_from_slice(&n.to_be_bytes());
        v
    };
    // An unknown option the sender marked optional is ignored.
    let msg = decode(&with_option(&[OPT_F_OPTIONAL | 5, 2, 0, 0]), 0).unwrap();
    assert_eq!(msg.conns, vec![tcp_v4()]);
    // An unknown mandatory one skips the record.
    let msg = decode(&with_option(&[5, 2, 0, 0]), 0).unwrap();
    assert_eq!(msg.skipped, vec![SkipReason::UnknownOption]);
    assert!(msg.conns.is_empty());

    let mut gre = tcp_v4();
    gre.protocol = 47;
    let mut bad_state = tcp_v4();
    bad_state.state = state::TCP_COUNT;
    let mut bad_template = template_v4();
    bad_template.state = state::TEMPLATE_COUNT;
    let msg = decode(
        &message(&[gre, tcp_v4(), bad_state, bad_template, udp_v6()], 0),
        0,
    )
    .unwrap();
    assert_eq!(msg.conns, vec![tcp_v4(), udp_v6()]);
    assert_eq!(
        msg.skipped,
        vec![
            SkipReason::UnknownProtocol,
            SkipReason::BadState,
            SkipReason::BadState
        ]
    );
}

/// Decoding never panics, and what it accepts encodes back to the same
/// records (the fuzz target checks the same on arbitrary input).
#[test]
fn arbitrary_bytes_never_panic() {
    let mut with_pe = udp_v6();
    with_pe.pe_data = Some(vec![1, 2, 3]);
    with_pe.pe_name = Some(b"sip".to_vec());
    let mut with_seq = tcp_v4();
    let seq = SeqAdjust {
        init_seq: 1,
        delta: 2,
        previous_delta: 3,
    };
    with_seq.seq = Some((seq, seq));
    let seed = message(&[tcp_v4(), with_pe, template_v4(), with_seq], 3);
    let mut x: u32 = 0x9e37_79b9;
    for _ in 0..100_000 {
        let mut v = seed.clone();
        for _ in 0..3 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let at = x as usize % v.len();
            v[at] = (x >> 8) as u8;
        }
        let cut = (x as usize >> 3) % (v.len() + 1);
        for buf in [&v[..], &v[..cut]] {
            if let Ok(msg) = decode(buf, 0) {
                let mut b = MessageBuilder::new(msg.syncid, 65_535);
                for c in &msg.conns {
                    b.push(c).expect("a decoded record encodes");
                }
                assert_eq!(decode(&b.finish(), 0).unwrap().conns, msg.conns);
            }
        }
    }
}

/// One datagram of the kernel's own sync daemon (Debian's 6.1 cloud kernel,
/// `ipvsadm --start-daemon master --mcast-interface l-sy --syncid 5`),
/// captured by `tests/vm/sync.rs` in the IPVS VM. The setup fixes what each
/// record must say: client 10.10.1.2 (IPv6 2001:db8:1::2) on fixed ports,
/// VIP 10.10.0.100 (2001:db8:100::1); TCP 80 → b0 10.10.2.2:80 NAT, TCP 81
/// persistent 300 s → b1 10.10.3.2:80 NAT, UDP 53 → b0 DR, UDP 54 → b1
/// TUN, IPv6 UDP 53 → 2001:db8:2::2 DR; the kernel's default timeouts
/// (TCP established 900 s, TIME_WAIT 120 s, UDP 300 s).
const KERNEL_MASTER: &[u8] = include_bytes!("../testdata/kernel-6.1-master.bin");

#[test]
fn a_kernel_master_message_decodes_field_by_field_and_re_encodes_byte_for_byte() {
    let msg = decode(KERNEL_MASTER, 5).expect("the kernel's message decodes");
    assert_eq!(msg.syncid, 5);
    assert!(msg.skipped.is_empty());
    // The kernel marks a connection it no longer counts as active, and
    // DR and TUN ones as having no output path (IP_VS_CONN_F_*).
    const INACTIVE: u32 = flags::INACTIVE;
    #[rustfmt::skip]
    let want: [(u8, u32, u16, &str, &str, &str, u32); 11] = [
        // The whole HTTP/1.0 exchange from 40082: established at its
        // third packet, then TIME_WAIT once both sides closed.
        (6, flags::MASQ, state::TCP_ESTABLISHED, "10.10.1.2:40082", "10.10.0.100:80", "10.10.2.2:80", 900),
        (6, flags::MASQ | INACTIVE, state::TCP_TIME_WAIT, "10.10.1.2:40082", "10.10.0.100:80", "10.10.2.2:80", 120),
        (6, flags::MASQ, state::TCP_ESTABLISHED, "10.10.1.2:40080", "10.10.0.100:80", "10.10.2.2:80", 900),
        // The persistence template (client port 0, the persistence
        // timeout) goes with each sync of its connection, first NONE then
        // ASSURED.
        (6, flags::TEMPLATE | INACTIVE | flags::MASQ, state::TEMPLATE_NONE, "10.10.1.2:0", "10.10.0.100:81", "10.10.3.2:80", 300),
        (6, flags::TEMPLATE | INACTIVE | flags::MASQ, state::TEMPLATE_ASSURED, "10.10.1.2:0", "10.10.0.100:81", "10.10.3.2:80", 300),
        (6, flags::MASQ, state::TCP_ESTABLISHED, "10.10.1.2:40081", "10.10.0.100:81", "10.10.3.2:80", 900),
        (6, flags::TEMPLATE | INACTIVE | flags::MASQ, state::TEMPLATE_ASSURED, "10.10.1.2:0", "10.10.0.100:81", "10.10.3.2:80", 300),
        (17, flags::DROUTE | flags::NOOUTPUT | INACTIVE, state::UDP_NORMAL, "10.10.1.2:40053", "10.10.0.100:53", "10.10.2.2:53", 300),
        (17, flags::DROUTE | flags::NOOUTPUT | INACTIVE, state::UDP_NORMAL, "10.10.1.2:40053", "10.10.0.100:53", "10.10.2.2:53", 300),
        (17, flags::TUNNEL | flags::NOOUTPUT | INACTIVE, state::UDP_NORMAL, "10.10.1.2:40054", "10.10.0.100:54", "10.10.3.2:54", 300),
        (17, flags::DROUTE | flags::NOOUTPUT | INACTIVE, state::UDP_NORMAL, "[2001:db8:1::2]:40056", "[2001:db8:100::1]:53", "[2001:db8:2::2]:53", 300),
    ];
    assert_eq!(msg.conns.len(), want.len());
    for (i, (c, w)) in msg.conns.iter().zip(want).enumerate() {
        let expected = SyncConn {
            protocol: w.0,
            flags: w.1,
            state: w.2,
            client: w.3.parse().unwrap(),
            vip: w.4.parse().unwrap(),
            dest: w.5.parse().unwrap(),
            fwmark: 0,
            timeout: w.6,
            seq: None,
            pe_data: None,
            pe_name: None,
        };
        assert_eq!(*c, expected, "record {i}");
    }
    // The kernel's framing: version 1 header, IPv4 records of 36 bytes,
    // the IPv6 one of 72, all of it within a 1500-byte MTU's payload.
    assert_eq!(KERNEL_MASTER.len(), 8 + 10 * RECORD_V4_LEN + RECORD_V6_LEN);
    let mut b = MessageBuilder::new(5, default_send_maxlen(false));
    for c in &msg.conns {
        b.push(c).unwrap();
    }
    assert_eq!(b.finish(), KERNEL_MASTER, "re-encoded");
    // A backup listening for another id refuses it whole.
    assert_eq!(
        decode(KERNEL_MASTER, 6),
        Err(DecodeError::OtherSyncId { got: 5, want: 6 })
    );
}
