//! Keys and values of every BPF map, shared by `lb-ebpf` and `lb-daemon`.
//!
//! Everything here is `#[repr(C)]` with explicit padding so both sides agree
//! byte for byte and the kernel never hashes uninitialised bytes in a key.
//! Addresses and ports are kept in network byte order, exactly as they sit in
//! the packet, so the data plane compares them without swapping.
#![no_std]

/// Services (VIP, port, protocol) the data plane knows.
pub const MAX_SERVICES: u32 = 1024;
/// Backend slots across all services.
pub const MAX_BACKENDS: u32 = 4096;
/// Schedule slots per service: the daemon expands a service's scheduling
/// decision into a ring of backend ids; the data plane only indexes it.
pub const MAX_SCHEDULE: u32 = 256;
/// Flows remembered in the connection table.
pub const FLOW_TABLE_SIZE: u32 = 262_144;
/// Interfaces the program may be attached to.
pub const MAX_IFACES: u32 = 64;

pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// How a service forwards to its backends (`lb_kind`).
pub const MODE_DR: u8 = 0;

/// How a service picks a backend for a new flow (`lb_algo`). The daemon has
/// already turned weights into the schedule ring; this is kept for lbctl.
pub const ALGO_RR: u8 = 0;
pub const ALGO_WRR: u8 = 1;

/// Lookup key of `SERVICES`: a virtual server.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct VipKey {
    /// IPv4 in `addr[0]`, the rest zero; IPv6 in all four words. Network order.
    pub addr: [u32; 4],
    /// Network byte order.
    pub port: u16,
    pub proto: u8,
    pub family: u8,
}

/// Value of `SERVICES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Service {
    /// Index into `SERVICE_STATS`, `RR_CURSOR` and the service's block of
    /// `SCHEDULE` (`id * MAX_SCHEDULE ..`).
    pub id: u32,
    /// Number of valid slots in the schedule ring; 0 means no backend can
    /// take a new flow.
    pub sched_len: u32,
    pub mode: u8,
    pub algo: u8,
    pub _pad: [u8; 2],
}

/// `Backend::flags`: the backend's MAC is resolved and the slot is in use.
pub const BACKEND_F_READY: u8 = 1;

/// Value of `BACKENDS`, indexed by backend id.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Backend {
    /// Same layout as `VipKey::addr`.
    pub addr: [u32; 4],
    /// Network byte order.
    pub port: u16,
    /// Where DR sends the frame.
    pub mac: [u8; 6],
    pub flags: u8,
    pub family: u8,
    pub _pad: [u8; 2],
}

/// Lookup key of `FLOWS`: a connection as the client sent it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    pub src: [u32; 4],
    pub dst: [u32; 4],
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub family: u8,
    pub _pad: [u8; 2],
}

/// Value of `FLOWS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowValue {
    pub backend: u32,
    pub service: u32,
}

/// Value of `IFACES` (keyed by ifindex): the interface's own MAC, written as
/// the source of every frame the program sends back out of it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Iface {
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// Value of the per-CPU counter arrays.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
}

/// Indexes of `GLOBAL_STATS`. The first five equal the XDP action codes.
pub mod stat {
    pub const ABORTED: u32 = 0;
    pub const DROP: u32 = 1;
    pub const PASS: u32 = 2;
    pub const TX: u32 = 3;
    pub const REDIRECT: u32 = 4;
    /// A packet for a VIP whose service had no backend for a new flow.
    pub const NO_BACKEND: u32 = 5;
    /// A packet whose chosen backend has no MAC yet (sent to the stack).
    pub const BACKEND_NOT_READY: u32 = 6;
    /// A new flow the connection table could not record.
    pub const FLOW_INSERT_FAILED: u32 = 7;
    /// New flows scheduled.
    pub const NEW_FLOW: u32 = 8;
    /// A packet for a VIP arriving on an interface without a known MAC.
    pub const NO_IFACE: u32 = 9;
    pub const LEN: u32 = 16;
    /// Names for display, by index.
    pub const NAMES: [&str; 10] = [
        "xdp_aborted",
        "xdp_drop",
        "xdp_pass",
        "xdp_tx",
        "xdp_redirect",
        "no_backend",
        "backend_not_ready",
        "flow_insert_failed",
        "new_flows",
        "no_iface",
    ];
}

/// Names of the maps in the object, as userspace finds them.
pub mod maps {
    pub const SERVICES: &str = "SERVICES";
    pub const BACKENDS: &str = "BACKENDS";
    pub const SCHEDULE: &str = "SCHEDULE";
    pub const RR_CURSOR: &str = "RR_CURSOR";
    pub const FLOWS: &str = "FLOWS";
    pub const IFACES: &str = "IFACES";
    pub const GLOBAL_STATS: &str = "GLOBAL_STATS";
    pub const SERVICE_STATS: &str = "SERVICE_STATS";
}

/// Name of the XDP program in the object.
pub const XDP_PROGRAM: &str = "lb_xdp";
/// A bare XDP_PASS program in the same object (benchmark baseline, and the
/// program a veth peer needs so native XDP_TX frames reach it).
pub const XDP_PASS_PROGRAM: &str = "xdp_pass";
/// Swaps MACs and returns XDP_TX: the floor of any forwarder's cost.
pub const XDP_SWAP_MAC_PROGRAM: &str = "xdp_swap_mac";

#[cfg(feature = "user")]
mod user {
    use super::*;

    macro_rules! pod {
        ($($t:ty),*) => {$(
            // SAFETY: #[repr(C)], only integer fields, explicit padding.
            unsafe impl aya::Pod for $t {}
            // SAFETY: as above; all-zero is a valid value.
            unsafe impl bytemuck::Zeroable for $t {}
            // SAFETY: as above; no implicit padding, every bit pattern valid.
            unsafe impl bytemuck::Pod for $t {}
        )*};
    }
    pod!(VipKey, Service, Backend, FlowKey, FlowValue, Iface, Counters);
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    // The kernel sees these sizes; a change here is a map ABI change.
    #[test]
    fn sizes_have_no_implicit_padding() {
        assert_eq!(size_of::<VipKey>(), 20);
        assert_eq!(size_of::<Service>(), 12);
        assert_eq!(size_of::<Backend>(), 28);
        assert_eq!(size_of::<FlowKey>(), 40);
        assert_eq!(size_of::<FlowValue>(), 8);
        assert_eq!(size_of::<Iface>(), 8);
        assert_eq!(size_of::<Counters>(), 16);
    }
}
