//! `cargo xtask bench`: the cost of the XDP program per packet, measured
//! with BPF_PROG_TEST_RUN the way Katran's perf tester measures: many calls
//! with repeat=1 (a program that rewrites a packet must never be fed its
//! own output), averaging the kernel's `duration`, less the cost of a bare
//! XDP_PASS measured the same way in the same run (the harness itself).
//! Each fixture is also set against its forwarding method's floor, a
//! stateless program shipped in the object (`lb-ebpf/src/baseline.rs`:
//! swap-MAC for DR, a fixed IPIP/IP6IP6 encapsulation for TUN, a fixed
//! destination rewrite for NAT) measured chunk by chunk beside it: the
//! overhead above the floor, in ns and as a ratio, is what the balancer's
//! state (services, connection table, scheduling) costs.
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

/// What one fixture cost: gross and net of the harness, and the
/// overhead above its floor (when it has one), all medians over chunks.
struct Cost {
    gross: f64,
    net: f64,
    floor: Option<(f64, f64)>,
}

/// Cost of one call over `feed` (cycled). The calls run in five chunks,
/// each right after a chunk of the bare XDP_PASS (and of the floor, when
/// given), and the medians of the chunk means are reported, net being each
/// chunk less the baseline chunk beside it: the harness's cost drifts on a
/// shared VM (68–88 ns seen here), and a baseline taken minutes earlier
/// would carry that drift into the net figure. `floor`: the floor program
/// and the frame it is fed; the result then holds (floor net, overhead).
fn measure(
    prog: &Xdp,
    feed: &Feed,
    calls: u32,
    base: &Baseline,
    floor: Option<(&Xdp, &[Vec<u8>])>,
) -> Result<Cost> {
    measure_with(prog, feed, calls, base, floor, &mut || Ok(()))
}

/// Chunks of `measure` per fixture.
const CHUNKS: u32 = 5;

/// `measure`, calling `between` (unmeasured) before each chunk: the sync
/// fixtures drain the reports there, as lbd would meanwhile.
fn measure_with(
    prog: &Xdp,
    feed: &Feed,
    calls: u32,
    base: &Baseline,
    floor: Option<(&Xdp, &[Vec<u8>])>,
    between: &mut dyn FnMut() -> Result<()>,
) -> Result<Cost> {
    let per = (calls / CHUNKS).max(1);
    let (mut gross, mut net, mut fnet, mut over) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut i, mut j, mut k) = (0usize, 0usize, 0usize);
    for _ in 0..CHUNKS {
        between()?;
        let b = chunk(base.prog, &Feed::plain(&base.frame), per, &mut j)?;
        let f = match floor {
            Some((fp, frames)) => Some(chunk(fp, &Feed::plain(frames), per, &mut k)?),
            None => None,
        };
        let g = chunk(prog, feed, per, &mut i)?;
        gross.push(g);
        net.push(g - b);
        if let Some(f) = f {
            fnet.push(f - b);
            over.push(g - f);
        }
    }
    Ok(Cost {
        gross: median(gross),
        net: median(net),
        floor: (!fnet.is_empty()).then(|| (median(fnet), median(over))),
    })
}

struct Row {
    name: String,
    cost: Cost,
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
    let (rows, sync) = net.ns.enter(move || bench(calls, &filter, v0))?;
    println!(
        "\nXDP cost per packet, BPF_PROG_TEST_RUN, {calls} calls with repeat=1 each, 4 backends"
    );
    println!(
        "(net = measured - bare XDP_PASS measured the same way, chunk by chunk, in this run)\n"
    );
    println!(
        "(floor = the method's stateless reference program, net; over floor = \
         measured - floor, chunk by chunk)\n"
    );
    println!(
        "{:<44} {:>8} {:>8} {:>8} {:>10} {:>9}",
        "fixture", "ns", "net ns", "floor", "over floor", "x floor"
    );
    for r in &rows {
        let c = &r.cost;
        let (floor, over, ratio) = match c.floor {
            Some((f, o)) => (
                format!("{f:.1}"),
                format!("{o:.1}"),
                format!("{:.2}x", c.net / f.max(1.0)),
            ),
            None => Default::default(),
        };
        println!(
            "{:<44} {:>8.1} {:>8.1} {:>8} {:>10} {:>9}",
            r.name, c.gross, c.net, floor, over, ratio
        );
    }
    if let Some(t) = sync {
        println!("\n{t}");
    }
    Ok(())
}

fn bench(calls: u32, filter: &str, v0: u32) -> Result<(Vec<Row>, Option<String>)> {
    let object = lb_daemon::bpf_object::embedded()?;
    // The bare programs and the floors, from the same object.
    let mut bare = aya::Ebpf::load(object)?;
    for name in [
        lb_common::XDP_PASS_PROGRAM,
        lb_common::XDP_SWAP_MAC_PROGRAM,
        lb_common::XDP_FLOOR_TUN_PROGRAM,
        lb_common::XDP_FLOOR_NAT_PROGRAM,
    ] {
        let p: &mut Xdp = bare.program_mut(name).context("program")?.try_into()?;
        p.load()?;
    }
    let program =
        |name: &str| -> Result<&Xdp> { Ok(bare.program(name).context("program")?.try_into()?) };
    let syn = |v6: bool| {
        vec![frames::tcp_frame(
            LB_MAC,
            CLIENT_MAC,
            client(v6, 1),
            vip(v6),
            1000,
            80,
            SYN,
        )]
    };
    let syn4 = syn(false);
    let pass_prog = program(lb_common::XDP_PASS_PROGRAM)?;
    let base = Baseline {
        prog: pass_prog,
        frame: syn4.clone(),
    };
    let harness = measure(pass_prog, &Feed::plain(&syn4), calls, &base, None)?;
    let mut rows = vec![Row {
        name: "bare XDP_PASS (harness)".into(),
        cost: Cost {
            net: 0.0,
            ..harness
        },
    }];
    // Each method's floor, alone.
    let floor_of = |mode: Mode| -> Result<&Xdp> {
        program(match mode {
            Mode::Dr => lb_common::XDP_SWAP_MAC_PROGRAM,
            Mode::Nat => lb_common::XDP_FLOOR_NAT_PROGRAM,
            Mode::Tun => lb_common::XDP_FLOOR_TUN_PROGRAM,
        })
    };
    for v6 in [false, true] {
        let fam = if v6 { "v6" } else { "v4" };
        for mode in [Mode::Dr, Mode::Nat, Mode::Tun] {
            let name = format!("floor {mode} {fam}");
            if !name.contains(filter) {
                continue;
            }
            let cost = measure(floor_of(mode)?, &Feed::plain(&syn(v6)), calls, &base, None)?;
            rows.push(Row { name, cost });
        }
    }

    // A fresh data plane (empty tables) for every fixture, so no fixture
    // pays for another's flows.
    let fresh = || lb_tests::testrun::fib_dataplane(LB_MAC, v0);
    for v6 in [false, true] {
        let fam = if v6 { "v6" } else { "v4" };
        let floor_frame = syn(v6);
        // Pass-through: TCP to an address that is not a VIP, with services
        // set. Its floor is the harness (XDP_PASS): its net is its overhead.
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
            let cost = measure(dp.program()?, &Feed::plain(&f), calls, &base, None)?;
            rows.push(Row {
                name: format!("pass-through {fam}"),
                cost,
            });
        }
        for mode in [Mode::Dr, Mode::Nat, Mode::Tun] {
            let floor = Some((floor_of(mode)?, floor_frame.as_slice()));
            for algo in [Algo::Rr, Algo::Wrr, Algo::Lc, Algo::Wlc, Algo::Sh, Algo::Mh] {
                let group = format!("{mode} {algo} {fam}");
                let want = |fixture: &str| format!("{group} {fixture}").contains(filter);
                const FIXTURES: [&str; 6] = [
                    "new, 100k clients",
                    "new, reused port",
                    "established, 1k flows",
                    "established, 100k flows",
                    "established, 1M flows",
                    "established, 1k flows, SYN flood",
                ];
                if !FIXTURES.iter().any(|f| want(f)) {
                    continue;
                }
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
                    let cost = measure(dp.program()?, &Feed::plain(&new), n, &base, floor)?;
                    rows.push(Row {
                        name: format!("{group} {}", FIXTURES[0]),
                        cost,
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
                    let cost = measure(dp.program()?, &reuse, calls, &base, floor)?;
                    rows.push(Row {
                        name: format!("{group} {}", FIXTURES[1]),
                        cost,
                    });
                }
                // Established: flows opened (SYN, unmeasured), then their
                // ACKs, cycled: 1,024 flows (cache warm), 100,000 and
                // 1,000,000 (cold; the last in a table of 2^21 entries, so
                // it holds them all).
                let est = [
                    (1024u32, FIXTURES[2], None),
                    (n, FIXTURES[3], None),
                    (1_000_000, FIXTURES[4], Some(1u32 << 21)),
                ];
                let mut shared = None;
                for (flows, fixture, size) in est {
                    if !want(fixture) {
                        continue;
                    }
                    let mut sized;
                    let dp = match size {
                        Some(size) => {
                            sized = lb_tests::testrun::fib_dataplane_sized(LB_MAC, v0, Some(size))?;
                            &mut sized
                        }
                        None => shared.get_or_insert(fresh()?),
                    };
                    dp.apply(&[spec(algo, mode, v6, v0)])?;
                    let open: Vec<Vec<u8>> =
                        (0..flows).map(|i| frame(200_000 + i, 2000, SYN)).collect();
                    chunk(dp.program()?, &Feed::plain(&open), flows, &mut 0)?;
                    drop(open);
                    let acks: Vec<Vec<u8>> =
                        (0..flows).map(|i| frame(200_000 + i, 2000, ACK)).collect();
                    let cost = measure(dp.program()?, &Feed::plain(&acks), calls, &base, floor)?;
                    rows.push(Row {
                        name: format!("{group} {fixture}"),
                        cost,
                    });
                }
                // SYN flood: the 1,024 established flows' ACKs, each call
                // preceded (unmeasured) by a SYN from a new spoofed source,
                // so the table fills with embryonic flows around them.
                if want(FIXTURES[5]) {
                    let mut dp = fresh()?;
                    dp.apply(&[spec(algo, mode, v6, v0)])?;
                    let open: Vec<Vec<u8>> =
                        (0..1024).map(|i| frame(200_000 + i, 2000, SYN)).collect();
                    chunk(dp.program()?, &Feed::plain(&open), 1024, &mut 0)?;
                    let flood: Vec<Vec<u8>> = (0..calls)
                        .map(|i| frame(1_000_000 + i, 1024 + (i % 60000) as u16, SYN))
                        .collect();
                    let acks: Vec<Vec<u8>> = (0..calls)
                        .map(|i| frame(200_000 + i % 1024, 2000, ACK))
                        .collect();
                    let feed = Feed {
                        frames: &acks,
                        prime: Some(&flood),
                    };
                    let cost = measure(dp.program()?, &feed, calls, &base, floor)?;
                    rows.push(Row {
                        name: format!("{group} {}", FIXTURES[5]),
                        cost,
                    });
                }
            }
        }
    }
    let sync = if "DR rr v4 sync".contains(filter) || filter.contains("sync") {
        rows.extend(sync::rows(calls, v0, &base, (floor_of(Mode::Dr)?, &syn4))?);
        Some(sync::throughput(calls, v0)?)
    } else {
        None
    };
    Ok((rows, sync))
}

/// Connection sync's cost: the same fixtures with the program's reports
/// off and on (DR rr v4), and how many reports per second go through the
/// ring to lbd's reader.
mod sync {
    use std::os::fd::{AsFd, AsRawFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::*;
    use lb_daemon::dataplane::bpf::{SyncEvents, XdpDataplane};

    /// Calls per chunk at most: the reused-port fixture writes two reports
    /// a call (the RST's state change, the new SYN), and a chunk's reports
    /// must fit the ring (65,535) between drains.
    const MAX_CHUNK: u32 = 30_000;

    fn frame(n: u32, sport: u16, flags: u8) -> Vec<u8> {
        frames::tcp_frame(
            LB_MAC,
            CLIENT_MAC,
            client(false, n),
            vip(false),
            sport,
            80,
            flags,
        )
    }

    fn dataplane(v0: u32, on: bool) -> Result<(XdpDataplane, SyncEvents)> {
        let mut dp = lb_tests::testrun::fib_dataplane(LB_MAC, v0)?;
        dp.apply(&[spec(Algo::Rr, Mode::Dr, false, v0)])?;
        let events = dp.sync_events()?;
        dp.set_reporting(on)?;
        Ok((dp, events))
    }

    fn drops(dp: &XdpDataplane) -> Result<u64> {
        let name = lb_common::stat::NAMES[lb_common::stat::SYNC_DROPS as usize];
        Ok(dp
            .stats()?
            .global
            .iter()
            .find(|(n, _, _)| n == name)
            .map_or(0, |c| c.1))
    }

    /// New flows (100k clients, and a reused port) and established flows
    /// (1k), each with reports off then on, one after the other.
    pub fn rows(
        calls: u32,
        v0: u32,
        base: &Baseline,
        floor: (&Xdp, &[Vec<u8>]),
    ) -> Result<Vec<Row>> {
        let calls = calls.min(MAX_CHUNK * CHUNKS);
        let mut rows = Vec::new();
        let n = calls.min(100_000);
        let new: Vec<Vec<u8>> = (0..n)
            .map(|i| frame(i, 1024 + (i % 50000) as u16, SYN))
            .collect();
        let (syn, rst) = (
            vec![frame(300_000, 3000, SYN)],
            vec![frame(300_000, 3000, RST)],
        );
        let open: Vec<Vec<u8>> = (0..1024).map(|i| frame(200_000 + i, 2000, SYN)).collect();
        let acks: Vec<Vec<u8>> = (0..1024).map(|i| frame(200_000 + i, 2000, ACK)).collect();
        for (fixture, feed, setup) in [
            ("new, 100k clients", Feed::plain(&new), None),
            (
                "new, reused port",
                Feed {
                    frames: &syn,
                    prime: Some(&rst),
                },
                None,
            ),
            ("established, 1k flows", Feed::plain(&acks), Some(&open)),
        ] {
            for on in [false, true] {
                let (mut dp, mut events) = dataplane(v0, on)?;
                if let Some(open) = setup {
                    chunk(dp.program()?, &Feed::plain(open), 1024, &mut 0)?;
                }
                let mut drained = 0usize;
                let mut between = || {
                    while events.drain(|_| drained += 1) > 0 {}
                    Ok(())
                };
                let cost =
                    measure_with(dp.program()?, &feed, calls, base, Some(floor), &mut between)?;
                between()?;
                let lost = drops(&dp)?;
                let state = if on { "on" } else { "off" };
                let mut name = format!("DR rr v4 sync {state}: {fixture}");
                if lost > 0 {
                    name.push_str(&format!(" ({lost} DROPPED)"));
                }
                rows.push(Row { name, cost });
            }
        }
        Ok(rows)
    }

    /// Reports per second through the ring: `calls` new flows fed to the
    /// program with reports on while lbd's reader drains them in another
    /// thread (woken through tokio as the sync task is), and the reader
    /// alone draining a full ring.
    pub fn throughput(calls: u32, v0: u32) -> Result<String> {
        let (mut dp, events) = dataplane(v0, true)?;
        let flows = calls.max(1);
        let new: Vec<Vec<u8>> = (0..flows)
            .map(|i| frame(i, 1024 + (i % 50000) as u16, SYN))
            .collect();
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let reader = std::thread::spawn(move || -> (u64, Instant, SyncEvents) {
            let mut events = events;
            let mut got = 0u64;
            loop {
                while events.drain(|_| got += 1) > 0 {}
                if stop.load(Ordering::Acquire) {
                    while events.drain(|_| got += 1) > 0 {}
                    break;
                }
                // Woken by the ring's descriptor, as the sync task is
                // (there through tokio).
                let mut pfd = libc::pollfd {
                    fd: events.as_fd().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd, for the duration of the call.
                unsafe { libc::poll(&mut pfd, 1, 10) };
            }
            (got, Instant::now(), events)
        });
        let prog = dp.program()?;
        let start = Instant::now();
        chunk(prog, &Feed::plain(&new), flows, &mut 0)?;
        let fed = start.elapsed();
        done.store(true, Ordering::Release);
        let (got, end, _events) = reader.join().expect("reader thread");
        let lost = drops(&dp)?;
        let rate = |n: f64, d: Duration| n / d.as_secs_f64();
        // The reader alone: a full ring, drained.
        let room = lb_common::SYNC_RING_BYTES / 64 - 1;
        let (mut full, _) = dataplane(v0, true)?;
        let mut alone = full.sync_events()?;
        let fill: Vec<Vec<u8>> = (0..room)
            .map(|i| frame(i, 1024 + (i % 50000) as u16, SYN))
            .collect();
        chunk(full.program()?, &Feed::plain(&fill), room, &mut 0)?;
        let t = Instant::now();
        let mut n = 0u64;
        while alone.drain(|_| n += 1) > 0 {}
        let drain = t.elapsed();
        Ok(format!(
            "sync reports through SYNC_EVENTS (DR rr v4, new flows by BPF_PROG_TEST_RUN, one call each):\n\
             {flows} new flows fed in {:.0} ms ({:.0}/s); {got} reports read by the reader thread \
             ({:.0}/s over the whole run); {lost} dropped (ring full)\n\
             the reader alone: a full ring of {n} reports drained in {:.1} ms ({:.0}/s)",
            fed.as_secs_f64() * 1e3,
            rate(f64::from(flows), fed),
            rate(got as f64, end - start),
            drain.as_secs_f64() * 1e3,
            rate(n as f64, drain),
        ))
    }
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
