//! `cargo xtask bench`: the cost of the XDP program per packet, measured
//! with BPF_PROG_TEST_RUN the way Katran's perf tester measures: many calls
//! with repeat=1 (a program that rewrites a packet must never be fed its
//! own output), averaging the kernel's `duration`, less the cost of a bare
//! XDP_PASS measured the same way in the same run (the harness itself).
//!
//! Usage: lb-bench-dataplane [CALLS [FILTER]]   (default 200000 calls per
//! fixture; FILTER: only fixtures whose name contains it)

use std::net::{IpAddr, SocketAddr};

use anyhow::{Context, Result};
use aya::programs::{TestRun, TestRunOptions, Xdp};
use lb_daemon::{
    dataplane::{Algo, BackendSpec, Dataplane, Mode, Proto, ServiceSpec},
    net::MacAddr,
};
use lb_tests::{fibnet::FibNet, frames};

const LB_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x10];
/// Katran's balancer on this machine, same method (ns/packet), the anchors
/// of the data plane's targets: new TCP flow, established flow,
/// pass-through. Katran's perf tester replays one packet per fixture, so
/// its caches are warm: they compare with the warm fixtures here (a SYN
/// on a reused port, which Katran schedules and records every time; 1,024
/// established flows). The cold fixtures (100,000 clients or flows) have
/// no anchor; the README gives Katran's cost on them, measured with the
/// same fixtures outside this tool.
const KATRAN_NEW: f64 = 415.0;
const KATRAN_EST: f64 = 168.0;
const KATRAN_PASS: f64 = 55.0;

const SYN: u8 = 0x02;
const ACK: u8 = 0x10;
const RST: u8 = 0x04;

fn backend_mac(i: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 0x01, 0x11 + i as u8]
}

fn backends(v6: bool) -> Vec<IpAddr> {
    (0..4)
        .map(|i| {
            if v6 {
                format!("fd09::{:x}", 0x11 + i).parse().unwrap()
            } else {
                format!("10.9.0.{}", 11 + i).parse().unwrap()
            }
        })
        .collect()
}

fn vip(v6: bool) -> IpAddr {
    if v6 { "fd09::100" } else { "10.9.0.100" }.parse().unwrap()
}

/// A client address for flow `n` (distinct per flow, outside the FIB net).
fn client(v6: bool, n: u32) -> IpAddr {
    if v6 {
        IpAddr::from([0xfd10, 0, 0, 0, 0, 0, (n >> 16) as u16, n as u16])
    } else {
        IpAddr::from([10, 100 + (n >> 16) as u8, (n >> 8) as u8, n as u8])
    }
}

/// What one fixture feeds the program: `frames`, cycled, each measured
/// call preceded (with `prime`) by an unmeasured call of the prime frame of
/// the same index, which puts the flow into the state the measured frame
/// needs.
struct Feed<'a> {
    frames: &'a [Vec<u8>],
    prime: Option<&'a [Vec<u8>]>,
}

impl<'a> Feed<'a> {
    fn plain(frames: &'a [Vec<u8>]) -> Self {
        Feed {
            frames,
            prime: None,
        }
    }
}

/// Mean kernel-measured ns of one call over `feed` (cycled, from `*i`).
fn chunk(prog: &Xdp, feed: &Feed, calls: u32, i: &mut usize) -> Result<f64> {
    let mut out = vec![0u8; 2048];
    let run = |f: &[u8], out: &mut [u8]| -> Result<u128> {
        let opts = TestRunOptions {
            data_in: Some(f),
            data_out: Some(out),
            repeat: 1,
            ..TestRunOptions::default()
        };
        Ok(prog.test_run(opts)?.duration.as_nanos())
    };
    let mut total = 0u128;
    for _ in 0..calls {
        let k = *i % feed.frames.len();
        *i += 1;
        if let Some(prime) = feed.prime {
            run(&prime[k], &mut out)?;
        }
        total += run(&feed.frames[k], &mut out)?;
    }
    Ok(total as f64 / f64::from(calls.max(1)))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The harness: a bare XDP_PASS and the frame it is fed.
struct Baseline<'a> {
    prog: &'a Xdp,
    frame: Vec<Vec<u8>>,
}

/// Cost of one call over `frames` (cycled): (gross, net) ns. The calls run
/// in five chunks, each right after a chunk of the bare XDP_PASS, and the
/// medians of the chunk means are reported, net being each chunk less the
/// baseline chunk beside it: the harness's cost drifts on a shared VM
/// (68–88 ns seen here), and a baseline taken minutes earlier would carry
/// that drift into the net figure.
fn measure(prog: &Xdp, feed: &Feed, calls: u32, base: &Baseline) -> Result<(f64, f64)> {
    const CHUNKS: u32 = 5;
    let per = (calls / CHUNKS).max(1);
    let (mut gross, mut net) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0usize, 0usize);
    for _ in 0..CHUNKS {
        let b = chunk(base.prog, &Feed::plain(&base.frame), per, &mut j)?;
        let g = chunk(prog, feed, per, &mut i)?;
        gross.push(g);
        net.push(g - b);
    }
    Ok((median(gross), median(net)))
}

struct Row {
    name: String,
    ns: f64,
    net: f64,
    anchor: Option<(f64, &'static str)>,
}

fn main() -> Result<()> {
    let calls: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()
        .context("CALLS must be a number")?
        .unwrap_or(200_000);
    let mut neigh = Vec::new();
    for v6 in [false, true] {
        for (i, b) in backends(v6).iter().enumerate() {
            neigh.push((*b, backend_mac(i)));
        }
    }
    let filter = std::env::args().nth(2).unwrap_or_default();
    let net = FibNet::new(&neigh)?;
    let v0 = net.v0;
    let rows = net.ns.enter(move || bench(calls, &filter, v0))?;
    println!(
        "\nXDP cost per packet, BPF_PROG_TEST_RUN, {calls} calls with repeat=1 each, 4 backends"
    );
    println!(
        "(net = measured - bare XDP_PASS measured the same way, chunk by chunk, in this run)\n"
    );
    println!(
        "{:<34} {:>9} {:>9} {:>22}",
        "fixture", "ns", "net ns", "vs Katran (same method)"
    );
    for r in &rows {
        let vs = match r.anchor {
            Some((k, what)) => format!("{:.2}x of {k:.0} ({what})", r.net / k),
            None => String::new(),
        };
        println!("{:<34} {:>9.1} {:>9.1} {:>22}", r.name, r.ns, r.net, vs);
    }
    Ok(())
}

fn bench(calls: u32, filter: &str, v0: u32) -> Result<Vec<Row>> {
    let object = lb_daemon::bpf_object::embedded()?;
    // The bare programs, from the same object.
    let mut bare = aya::Ebpf::load(object)?;
    for name in [lb_common::XDP_PASS_PROGRAM, lb_common::XDP_SWAP_MAC_PROGRAM] {
        let p: &mut Xdp = bare.program_mut(name).context("program")?.try_into()?;
        p.load()?;
    }
    let syn4 = vec![frames::tcp_frame(
        LB_MAC,
        CLIENT_MAC,
        client(false, 1),
        vip(false),
        1000,
        80,
        0x02,
    )];
    let pass_prog: &Xdp = bare
        .program(lb_common::XDP_PASS_PROGRAM)
        .unwrap()
        .try_into()?;
    let base = Baseline {
        prog: pass_prog,
        frame: syn4.clone(),
    };
    let (harness, _) = measure(pass_prog, &Feed::plain(&syn4), calls, &base)?;
    let swap: &Xdp = bare
        .program(lb_common::XDP_SWAP_MAC_PROGRAM)
        .unwrap()
        .try_into()?;
    let (swap_ns, swap_net) = measure(swap, &Feed::plain(&syn4), calls, &base)?;
    let mut rows = vec![
        Row {
            name: "bare XDP_PASS (harness)".into(),
            ns: harness,
            net: 0.0,
            anchor: None,
        },
        Row {
            name: "bare swap-MAC XDP_TX".into(),
            ns: swap_ns,
            net: swap_net,
            anchor: None,
        },
    ];

    // A fresh data plane (empty tables) for every fixture, so no fixture
    // pays for another's flows.
    let fresh = || lb_tests::testrun::fib_dataplane(LB_MAC, v0);
    for v6 in [false, true] {
        let fam = if v6 { "v6" } else { "v4" };
        // Pass-through: TCP to an address that is not a VIP, with services set.
        if format!("pass-through {fam}").contains(filter) {
            let mut dp = fresh()?;
            dp.apply(&[spec(Algo::Rr, Mode::Dr, v6, v0)])?;
            let other: IpAddr = if v6 { "fd09::99" } else { "10.9.0.99" }.parse()?;
            let f = vec![frames::tcp_frame(
                LB_MAC,
                CLIENT_MAC,
                client(v6, 1),
                other,
                1000,
                80,
                0x02,
            )];
            let (ns, net) = measure(dp.program()?, &Feed::plain(&f), calls, &base)?;
            rows.push(Row {
                name: format!("pass-through {fam}"),
                ns,
                net,
                anchor: Some((KATRAN_PASS, "pass")),
            });
        }
        for mode in [Mode::Dr, Mode::Nat, Mode::Tun] {
            for algo in [Algo::Rr, Algo::Wrr, Algo::Lc, Algo::Wlc, Algo::Sh, Algo::Mh] {
                let group = format!("{mode} {algo} {fam}");
                let want = |fixture: &str| format!("{group} {fixture}").contains(filter);
                const FIXTURES: [&str; 4] = [
                    "new, 100k clients",
                    "new, reused port",
                    "established, 1k flows",
                    "established, 100k flows",
                ];
                if !FIXTURES.iter().any(|f| want(f)) {
                    continue;
                }
                let tun = mode == Mode::Tun;
                let est_anchor = (tun || mode == Mode::Dr).then_some((KATRAN_EST, "established"));
                let frame = |n: u32, sport: u16, flags: u8| {
                    frames::tcp_frame(LB_MAC, CLIENT_MAC, client(v6, n), vip(v6), sport, 80, flags)
                };
                // New flows, cache cold: every call a different client, so
                // each lands in a bucket of the connection table no recent
                // packet touched (as a burst of new clients does).
                let n = calls.min(100_000);
                if want(FIXTURES[0]) {
                    let mut dp = fresh()?;
                    dp.apply(&[spec(algo, mode, v6, v0)])?;
                    let new: Vec<Vec<u8>> = (0..n)
                        .map(|i| frame(i, 1024 + (i % 50000) as u16, SYN))
                        .collect();
                    let (ns, net) = measure(dp.program()?, &Feed::plain(&new), n, &base)?;
                    rows.push(Row {
                        name: format!("{group} {}", FIXTURES[0]),
                        ns,
                        net,
                        anchor: None,
                    });
                }
                // New flows, cache warm: one client reusing its port, each
                // SYN after an (unmeasured) RST closed the previous
                // connection, so every SYN is scheduled and recorded again.
                // This is what a perf tester replaying one SYN measures of
                // a balancer that schedules every SYN (Katran); a bare
                // replayed SYN is a retransmission here, which keeps its
                // backend.
                if want(FIXTURES[1]) {
                    let mut dp = fresh()?;
                    dp.apply(&[spec(algo, mode, v6, v0)])?;
                    let (syn, rst) = (
                        vec![frame(300_000, 3000, SYN)],
                        vec![frame(300_000, 3000, RST)],
                    );
                    let reuse = Feed {
                        frames: &syn,
                        prime: Some(&rst),
                    };
                    let (ns, net) = measure(dp.program()?, &reuse, calls, &base)?;
                    rows.push(Row {
                        name: format!("{group} {}", FIXTURES[1]),
                        ns,
                        net,
                        anchor: tun.then_some((KATRAN_NEW, "new")),
                    });
                }
                // Established: flows opened (SYN, unmeasured), then their
                // ACKs, cycled: 1,024 flows (cache warm) and 100,000 (cold).
                let mut dp = fresh()?;
                dp.apply(&[spec(algo, mode, v6, v0)])?;
                let est = [(1024u32, FIXTURES[2], est_anchor), (n, FIXTURES[3], None)];
                for (flows, fixture, anchor) in est {
                    if !want(fixture) {
                        continue;
                    }
                    let open: Vec<Vec<u8>> =
                        (0..flows).map(|i| frame(200_000 + i, 2000, SYN)).collect();
                    chunk(dp.program()?, &Feed::plain(&open), flows, &mut 0)?;
                    let acks: Vec<Vec<u8>> =
                        (0..flows).map(|i| frame(200_000 + i, 2000, ACK)).collect();
                    let (ns, net) = measure(dp.program()?, &Feed::plain(&acks), calls, &base)?;
                    rows.push(Row {
                        name: format!("{group} {fixture}"),
                        ns,
                        net,
                        anchor,
                    });
                }
            }
        }
    }
    Ok(rows)
}

/// A service as lbd installs it: NAT and TUN backends with their next hop
/// resolved (lbd keeps them resolved), so no FIB lookup per packet.
fn spec(algo: Algo, mode: Mode, v6: bool, v0: u32) -> ServiceSpec {
    let mut s = ServiceSpec::new(
        SocketAddr::new(vip(v6), 80),
        Proto::Tcp,
        backends(v6)
            .iter()
            .enumerate()
            .map(|(i, ip)| BackendSpec {
                addr: SocketAddr::new(*ip, 80),
                weight: 1 + i as u32,
                mac: Some(MacAddr(backend_mac(i))),
                via: (mode != Mode::Dr).then_some(v0),
                removed: false,
            })
            .collect(),
    );
    s.algo = algo;
    s.mode = mode;
    s
}
