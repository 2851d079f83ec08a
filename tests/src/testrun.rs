//! Driving the real program with BPF_PROG_TEST_RUN.

use std::net::IpAddr;

use anyhow::Result;
use aya::programs::{TestRun, TestRunOptions};
use aya::TestRunResult;
use lb_daemon::{
    dataplane::bpf::XdpDataplane,
    net::{Interface, MacAddr},
};

use crate::fibnet::{V0_ADDR4, V0_ADDR6, V0_MAC};

/// Runs one frame through the XDP program: (verdict, the frame as it left).
pub fn run(dp: &mut XdpDataplane, frame: &[u8]) -> (u32, Vec<u8>) {
    run_program(dp.program().unwrap(), frame)
}

/// Runs one frame through the TC program: (verdict, the frame as it left).
pub fn run_tc(dp: &mut XdpDataplane, frame: &[u8]) -> (u32, Vec<u8>) {
    run_program(dp.tc_program().unwrap(), frame)
}

/// One BPF_PROG_TEST_RUN of a packet program, with room for the frame to
/// grow (encapsulation) on its way out.
fn run_program<P>(prog: &P, frame: &[u8]) -> (u32, Vec<u8>)
where
    P: for<'a> TestRun<Opts<'a> = TestRunOptions<'a>, Result = TestRunResult>,
{
    let mut out = vec![0u8; frame.len() + 256];
    let opts = TestRunOptions {
        data_in: Some(frame),
        data_out: Some(&mut out),
        ..TestRunOptions::default()
    };
    let r = prog.test_run(opts).expect("BPF_PROG_TEST_RUN");
    out.truncate(r.data_size_out as usize);
    (r.return_value, out)
}

/// One single-packet case, a row of a table as Katran's fixtures and
/// Cilium's `bpf/tests` write them: what it is, the frame that arrives, and
/// the verdict and frame the program must give back.
#[derive(Clone, Debug)]
pub struct Case {
    pub what: String,
    pub input: Vec<u8>,
    pub verdict: u32,
    pub output: Vec<u8>,
}

impl Case {
    pub fn new(what: impl Into<String>, input: Vec<u8>, verdict: u32, output: Vec<u8>) -> Self {
        Self {
            what: what.into(),
            input,
            verdict,
            output,
        }
    }

    /// A frame that must leave byte for byte as it came, with `verdict`
    /// (the kernel's "pass" of the hook, for traffic the program leaves to
    /// the stack).
    pub fn untouched(what: impl Into<String>, verdict: u32, input: Vec<u8>) -> Self {
        let output = input.clone();
        Self::new(what, input, verdict, output)
    }
}

/// Runs each case through `program` (`|f| run(&mut dp, f)`), in order on
/// the same data plane; a failure names its row (and the test's line).
#[track_caller]
pub fn check_cases(cases: &[Case], mut program: impl FnMut(&[u8]) -> (u32, Vec<u8>)) {
    for case in cases {
        let (verdict, out) = program(&case.input);
        assert_eq!(verdict, case.verdict, "{}: verdict", case.what);
        assert_eq!(out, case.output, "{}: frame", case.what);
    }
}

/// A data plane as the FIB fixtures want it, inside a `FibNet` namespace:
/// `lb_mac` on loopback (where test-run frames arrive), `v0` (ifindex `v0`)
/// recorded as an egress interface, and the TUN sources on v0's addresses.
pub fn fib_dataplane(lb_mac: [u8; 6], v0: u32) -> Result<XdpDataplane> {
    fib_dataplane_sized(lb_mac, v0, None)
}

/// `fib_dataplane` with a connection table of `conn_table_size` entries
/// (the default without).
pub fn fib_dataplane_sized(
    lb_mac: [u8; 6],
    v0: u32,
    conn_table_size: Option<u32>,
) -> Result<XdpDataplane> {
    let object = lb_daemon::bpf_object::embedded()?;
    let opts = lb_daemon::dataplane::bpf::LoadOptions {
        pin_path: None,
        conn_table_size,
    };
    let mut dp = XdpDataplane::load_with(object, &opts)?;
    dp.set_interface_mac(1, MacAddr(lb_mac))?;
    dp.set_interface(&Interface {
        name: "v0".into(),
        index: v0,
        mac: MacAddr(V0_MAC),
        mtu: 1500,
    })?;
    let (IpAddr::V4(a4), IpAddr::V6(a6)) = (V0_ADDR4.parse()?, V0_ADDR6.parse()?) else {
        anyhow::bail!("v0's addresses");
    };
    dp.set_tunnel_source(Some(a4), Some(a6))?;
    Ok(dp)
}
