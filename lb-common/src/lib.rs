//! Keys and values of every BPF map, shared by `lb-ebpf` and `lb-daemon`.
//!
//! Everything here is `#[repr(C)]` with explicit padding so both sides agree
//! byte for byte and the kernel never hashes uninitialised bytes in a key.
//! Addresses and ports are kept in network byte order, exactly as they sit in
//! the packet, so the data plane compares them without swapping. An address
//! is four 32-bit words: IPv4 in the first word and zeros after it, IPv6 in
//! all four.
#![no_std]

/// Services (VIP, port, protocol) the data plane knows.
pub const MAX_SERVICES: u32 = 1024;
/// Backend slots across all services (a backend of two services has two).
pub const MAX_BACKENDS: u32 = 16384;
/// Slots of the shared scheduling area. Each service owns a region of it:
/// the rr/wrr ring, the sh bucket table, the Maglev table, or the lc/wlc
/// candidate list. The daemon writes a new region and then flips the
/// service to it in one map update, so no packet sees a half-written table.
pub const SCHED_CAPACITY: u32 = 1 << 21;
/// lc/wlc walk at most this many candidates per new flow.
pub const MAX_LC_BACKENDS: u32 = 64;
/// Buckets of a source-hash table, as IPVS's sh (`IP_VS_SH_TAB_SIZE`).
pub const SH_TAB_BITS: u32 = 8;
pub const SH_TAB_SIZE: u32 = 1 << SH_TAB_BITS;
/// Default size of the connection table (`--conn-table-size`).
pub const CONN_TABLE_SIZE: u32 = 262_144;
/// Persistence templates (client, service) → backend.
pub const PERSIST_TABLE_SIZE: u32 = 65_536;
/// Slots of the VIP prefilter (a direct-mapped set of VIP hashes).
pub const VIP_FILTER_BITS: u32 = 14;
pub const VIP_FILTER_SIZE: u32 = 1 << VIP_FILTER_BITS;
/// `VIP_FILTER` value: several services hash to this slot; the program
/// finds theirs in `SERVICES` by address. (0: none; otherwise the slot of
/// `SERVICE_SLOTS` holding the one service there, plus one.)
pub const VIP_FILTER_SHARED: u32 = u32::MAX;
/// `SERVICE_SLOTS` holds two slots per service id (`2 × id` and `2 × id +
/// 1`): the daemon writes a changed service into the one not in use, then
/// points the prefilter at it, so no packet reads a half-written service.
pub const SERVICE_SLOT_COUNT: u32 = 2 * MAX_SERVICES;
/// Interfaces are indexed by ifindex directly.
pub const MAX_IFINDEX: u32 = 4096;

pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;

/// How a service forwards to its backends (`lb_kind`).
pub const MODE_DR: u8 = 0;
pub const MODE_NAT: u8 = 1;
pub const MODE_TUN: u8 = 2;

/// How a service picks a backend for a new flow (`lb_algo`).
pub const ALGO_RR: u8 = 0;
pub const ALGO_WRR: u8 = 1;
pub const ALGO_LC: u8 = 2;
pub const ALGO_WLC: u8 = 3;
pub const ALGO_SH: u8 = 4;
pub const ALGO_MH: u8 = 5;

/// `Service::flags`.
pub mod svc {
    /// Clients stick to a backend (`persistence_timeout`).
    pub const PERSIST: u32 = 1;
    /// sh/mh hash the source port too (`sh-port`, `mh-port`).
    pub const HASH_PORT: u32 = 2;
    /// sh/mh look further when the hashed backend is unavailable
    /// (`sh-fallback`, `mh-fallback`).
    pub const FALLBACK: u32 = 4;
    /// `Service::sorry` names a backend for when no other can take a flow.
    pub const SORRY: u32 = 8;
}

/// Lookup key of `SERVICES`: a virtual server.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct VipKey {
    pub addr: [u32; 4],
    /// Network byte order.
    pub port: u16,
    pub proto: u8,
    pub family: u8,
}

/// A service with its address, as `SERVICE_SLOTS` holds it: the program
/// reads it by the prefilter's slot and checks the address matches.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ServiceSlot {
    pub vip: VipKey,
    pub service: Service,
}

/// Value of `SERVICES`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Service {
    /// Index into the per-service arrays (`SERVICE_STATS`, `RR_CURSOR`).
    pub id: u32,
    pub flags: u32,
    /// The service's region of `SCHEDULE`.
    pub sched_off: u32,
    /// Length of the region; 0: no backend can take a new flow.
    pub sched_len: u32,
    /// Backend id of the sorry server (with `svc::SORRY`).
    pub sorry: u32,
    /// Persistence: jiffies a client sticks after its last connection.
    pub persist_timeout: u32,
    /// Persistence granularity, applied to the client address (all ones
    /// for per-address persistence).
    pub persist_mask: [u32; 4],
    pub mode: u8,
    pub algo: u8,
    pub _pad: [u8; 2],
}

/// `Backend::flags`: the slot is in use and the backend can be sent to (its
/// MAC is known in DR mode).
pub const BACKEND_F_READY: u8 = 1;
/// `Backend::flags`: the slot belongs to a service (even while not ready),
/// so a restarted daemon finds it again in the pinned map.
pub const BACKEND_F_USED: u8 = 2;
/// `Backend::flags`: the slot is its service's sorry server.
pub const BACKEND_F_SORRY: u8 = 4;
/// `Backend::flags` (NAT, TUN): `mac` and `oif` are the resolved next hop,
/// so the program sends there without a FIB lookup per packet.
pub const BACKEND_F_NEXTHOP: u8 = 8;

/// Value of `BACKENDS`, indexed by backend id.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Backend {
    pub addr: [u32; 4],
    /// Network byte order.
    pub port: u16,
    /// Where DR sends the frame.
    pub mac: [u8; 6],
    pub flags: u8,
    pub family: u8,
    pub _pad: [u8; 2],
    /// Current weight: 0 takes no new flows (established ones continue).
    pub weight: u32,
    /// Id of the service the slot belongs to.
    pub service: u32,
    /// NAT, TUN with `BACKEND_F_NEXTHOP`: the interface towards the next hop.
    pub oif: u32,
}

/// Lookup key of `CONNS` (and of `NAT_REV`): a flow as it arrives.
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

/// Connection states, from the packets the balancer sees.
pub mod conn_state {
    /// TCP: a SYN, no ACK of the handshake yet (counted inactive).
    pub const SYN: u8 = 1;
    /// TCP: handshake completed (counted active).
    pub const ESTABLISHED: u8 = 2;
    /// TCP: a FIN was seen (counted inactive).
    pub const FIN: u8 = 3;
    /// TCP: a RST was seen (counted inactive, short timeout).
    pub const CLOSE: u8 = 4;
    /// UDP (counted inactive, as ipvsadm shows UDP).
    pub const UDP: u8 = 5;

    /// Whether a state counts as an active connection (lc/wlc's weighting).
    pub const fn is_active(state: u8) -> bool {
        state == ESTABLISHED
    }
}

/// Value of `CONNS`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Conn {
    pub backend: u32,
    pub service: u32,
    /// Jiffies (low 32 bits) at the last packet, refreshed at most once a
    /// jiffy.
    pub last_seen: u32,
    pub state: u8,
    /// The service's `mode` when the flow started (`MODE_*`).
    pub mode: u8,
    /// Non-zero when the flow is in `BACKEND_CONNS` (its service weighs
    /// connections: lc, wlc). Other flows skip the atomic updates; the
    /// daemon's recount gives their counts for display.
    pub counted: u8,
    pub _pad: u8,
}

/// Value of `BACKEND_CONNS`, indexed by backend id: the connection counts
/// lc and wlc weigh. The program adjusts them as flows start and change
/// state; the daemon recounts them from `CONNS` now and then, which also
/// accounts for flows that expired or were evicted.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConnCounts {
    pub active: u64,
    pub inactive: u64,
}

/// Lookup key of `PERSIST`: a client of a service, masked by granularity.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PersistKey {
    pub addr: [u32; 4],
    pub service: u32,
}

/// Value of `PERSIST`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PersistValue {
    pub backend: u32,
    pub last_seen: u32,
}

/// Value of `NAT_REV`, keyed by a reply's flow (backend → client): what to
/// write back so the client sees the VIP.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NatRev {
    pub vip: [u32; 4],
    /// Network byte order.
    pub vport: u16,
    pub _pad: [u8; 2],
    pub service: u32,
    pub backend: u32,
}

/// Value of `IFACES`, indexed by ifindex.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Iface {
    /// The interface's own MAC: the source of frames sent out of it.
    pub mac: [u8; 6],
    /// Non-zero when the entry is in use.
    pub present: u8,
    pub _pad: u8,
    /// Its MTU: an encapsulated packet longer than this is not sent.
    pub mtu: u32,
}

/// An entry of the `SYNC_EVENTS` ring buffer, written by the program only
/// while connection sync is on: a connection that started, changed state
/// (into ESTABLISHED, FIN or CLOSE), or is still alive past a sync period.
/// The daemon resolves `backend` to its address and packs the events into
/// IPVS sync messages.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SyncEvent {
    /// The flow as it arrives (client → VIP).
    pub flow: FlowKey,
    pub service: u32,
    pub backend: u32,
    /// `conn_state`.
    pub state: u8,
    /// `MODE_*`.
    pub mode: u8,
    pub _pad: [u8; 2],
}

/// Size in bytes of `SYNC_EVENTS` (a power of two): room for the events of
/// a burst of new flows while the daemon is between reads.
pub const SYNC_RING_BYTES: u32 = 1 << 22;

/// Value of the one-entry `SETTINGS` array.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Settings {
    /// Idle timeouts in jiffies, as keepalived's `lvs_timeouts` (IPVS's
    /// defaults: tcp 900 s, tcpfin 120 s, udp 300 s).
    pub tcp_timeout: u32,
    pub tcpfin_timeout: u32,
    pub udp_timeout: u32,
    /// A handshake that never completes (IPVS SYN_RECV: 60).
    pub syn_timeout: u32,
    /// After a RST (IPVS CLOSE: 10).
    pub close_timeout: u32,
    /// Outer source of TUN packets.
    pub tun_src4: u32,
    pub tun_src6: [u32; 4],
    /// Non-zero when some service uses NAT: replies are looked up.
    pub nat_enabled: u32,
    /// Jiffies between refreshes of a connection's timestamp (and of its
    /// NAT reverse entry): a second, so a busy flow costs one write a
    /// second, not one a packet.
    pub refresh: u32,
}

impl Settings {
    /// IPVS's default timeouts for a kernel ticking at `hz`.
    pub const fn ipvs_defaults(hz: u32) -> Settings {
        Settings {
            tcp_timeout: 900 * hz,
            tcpfin_timeout: 120 * hz,
            udp_timeout: 300 * hz,
            syn_timeout: 60 * hz,
            close_timeout: 10 * hz,
            tun_src4: 0,
            tun_src6: [0; 4],
            nat_enabled: 0,
            refresh: hz,
        }
    }

    /// Idle timeout (jiffies) of a connection in `state`.
    pub const fn timeout(&self, state: u8) -> u32 {
        match state {
            conn_state::SYN => self.syn_timeout,
            conn_state::ESTABLISHED => self.tcp_timeout,
            conn_state::FIN => self.tcpfin_timeout,
            conn_state::CLOSE => self.close_timeout,
            _ => self.udp_timeout,
        }
    }
}

/// Value of the per-CPU counter arrays.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
    /// New flows scheduled (services and backends).
    pub new_conns: u64,
}

/// Defines the global counters from one list, so an index and its name
/// cannot drift apart: each entry becomes an index constant (its position
/// in the list), and the list gives `COUNT` and `NAMES` (what lbctl and the
/// metrics show). Plain constants and arrays, usable from the BPF program.
macro_rules! counters {
    (@index $i:expr;) => {};
    (@index $i:expr; $(#[$doc:meta])* $name:ident $($rest:tt)*) => {
        $(#[$doc])*
        pub const $name: u32 = $i;
        counters!(@index $i + 1; $($rest)*);
    };
    ($($(#[$doc:meta])* $name:ident => $label:literal,)*) => {
        counters!(@index 0; $($(#[$doc])* $name)*);
        /// How many counters there are.
        pub const COUNT: usize = [$($label),*].len();
        /// Names for display, by index.
        pub const NAMES: [&str; COUNT] = [$($label),*];
    };
}

/// Indexes of `GLOBAL_STATS`. The first five equal the XDP action codes.
pub mod stat {
    counters! {
        ABORTED => "xdp_aborted",
        DROP => "xdp_drop",
        PASS => "xdp_pass",
        TX => "xdp_tx",
        REDIRECT => "xdp_redirect",
        /// A new flow for a VIP found no backend (and no sorry server).
        NO_BACKEND => "no_backend",
        /// The chosen backend cannot be sent to yet (no MAC): to the stack.
        BACKEND_NOT_READY => "backend_not_ready",
        /// A new flow the connection table could not record.
        CONN_INSERT_FAILED => "conn_insert_failed",
        /// New flows scheduled.
        NEW_CONN => "new_conns",
        /// A packet for a VIP arriving on an interface without a known MAC.
        NO_IFACE => "no_iface",
        /// A TCP packet without SYN for a flow the table does not hold (it
        /// expired or was evicted): scheduled anew, which may move it.
        CONN_MISS => "conn_miss",
        /// The kernel's FIB had no route or neighbour: to the stack, rewritten.
        FIB_MISS => "fib_miss",
        /// ICMP errors about a flow, sent on to its backend.
        ICMP_FORWARDED => "icmp_forwarded",
        /// NAT replies rewritten back to the VIP.
        NAT_REPLY => "nat_replies",
        /// Encapsulation would exceed the MTU: to the stack.
        TOO_BIG => "too_big",
        /// A TCP or UDP header inconsistent with the packet (UDP length
        /// below 8 or past the packet, TCP data offset below 5 or past the
        /// packet, an IP length past the frame): to the stack untouched,
        /// never balanced.
        MALFORMED_L4 => "malformed_l4",
    }
    /// Entries of `GLOBAL_STATS`: part of the map's shape (pinned maps of
    /// another size are refused), so it stays put while counters are added
    /// up to it.
    pub const LEN: u32 = 16;
    const _: () = assert!(
        COUNT <= LEN as usize,
        "GLOBAL_STATS has no room for every counter"
    );
}

/// Names of the maps in the object (and of their pins).
pub mod maps {
    pub const SERVICES: &str = "SERVICES";
    pub const BACKENDS: &str = "BACKENDS";
    pub const SCHEDULE: &str = "SCHEDULE";
    pub const RR_CURSOR: &str = "RR_CURSOR";
    pub const CONNS: &str = "CONNS";
    pub const BACKEND_CONNS: &str = "BACKEND_CONNS";
    pub const PERSIST: &str = "PERSIST";
    pub const NAT_REV: &str = "NAT_REV";
    pub const IFACES: &str = "IFACES";
    pub const SETTINGS: &str = "SETTINGS";
    pub const VIP_FILTER: &str = "VIP_FILTER";
    pub const SERVICE_SLOTS: &str = "SERVICE_SLOTS";
    pub const GLOBAL_STATS: &str = "GLOBAL_STATS";
    pub const SERVICE_STATS: &str = "SERVICE_STATS";
    pub const BACKEND_STATS: &str = "BACKEND_STATS";
    /// Ring buffer of `SyncEvent`s (connection sync).
    pub const SYNC_EVENTS: &str = "SYNC_EVENTS";
    pub const ALL: [&str; 15] = [
        SERVICES,
        BACKENDS,
        SCHEDULE,
        RR_CURSOR,
        CONNS,
        BACKEND_CONNS,
        PERSIST,
        NAT_REV,
        IFACES,
        SETTINGS,
        VIP_FILTER,
        SERVICE_SLOTS,
        GLOBAL_STATS,
        SERVICE_STATS,
        BACKEND_STATS,
    ];
}

/// Name of the balancer's XDP program in the object.
pub const XDP_PROGRAM: &str = "lb_xdp";
/// The same balancer as a TC (clsact ingress) program.
pub const TC_PROGRAM: &str = "lb_tc";
/// A bare XDP_PASS program in the same object (benchmark baseline, and the
/// program a veth peer needs so native XDP_TX frames reach it).
pub const XDP_PASS_PROGRAM: &str = "xdp_pass";
/// Swaps MACs and returns XDP_TX: the floor of any forwarder's cost.
pub const XDP_SWAP_MAC_PROGRAM: &str = "xdp_swap_mac";
/// Fixed IPIP/IP6IP6 encapsulation, no lookup: TUN's cost floor.
pub const XDP_FLOOR_TUN_PROGRAM: &str = "xdp_floor_tun";
/// Fixed destination rewrite, no lookup: NAT's cost floor.
pub const XDP_FLOOR_NAT_PROGRAM: &str = "xdp_floor_nat";
/// TC ingress program that strips IPIP/IP6IP6 (a TUN backend's side).
pub const TC_DECAP_PROGRAM: &str = "tc_decap";

/// Folds an address to 32 bits (IPv6: XOR of its words), as IPVS's sh does.
#[inline(always)]
pub const fn fold_addr(addr: &[u32; 4]) -> u32 {
    addr[0] ^ addr[1] ^ addr[2] ^ addr[3]
}

/// Slot of the VIP prefilter for a destination address and port (network
/// order). Shared so the daemon marks exactly the slot the program tests.
#[inline(always)]
pub const fn vip_filter_index(addr: &[u32; 4], port: u16) -> u32 {
    let h = fold_addr(addr) ^ (port as u32).wrapping_mul(0x9e37_79b1);
    h.wrapping_mul(0x85eb_ca6b) >> (32 - VIP_FILTER_BITS)
}

/// IPVS's `hash_32`: multiplicative hashing with the golden ratio.
#[inline(always)]
pub const fn hash_32(val: u32, bits: u32) -> u32 {
    val.wrapping_mul(0x61c8_8647) >> (32 - bits)
}

/// IPVS sh's bucket for a source (address and port in network order; port
/// 0 unless `sh-port`): `hash_32(ntohs(port) + ntohl(fold(addr)), 8)`.
#[inline(always)]
pub const fn sh_bucket(addr: &[u32; 4], port: u16) -> u32 {
    let a = u32::from_be(fold_addr(addr));
    let p = u16::from_be(port) as u32;
    hash_32(p.wrapping_add(a), SH_TAB_BITS)
}

/// Source hash for Maglev lookups: murmur3's finaliser over the folded
/// address and the port (network order; 0 unless `mh-port`).
#[inline(always)]
pub const fn mh_hash(addr: &[u32; 4], port: u16) -> u32 {
    let mut h =
        addr[0] ^ addr[1].rotate_left(7) ^ addr[2].rotate_left(14) ^ addr[3].rotate_left(21);
    h ^= (port as u32) << 16;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

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
    pod!(
        VipKey,
        Service,
        ServiceSlot,
        Backend,
        FlowKey,
        Conn,
        ConnCounts,
        PersistKey,
        PersistValue,
        NatRev,
        Iface,
        Settings,
        Counters,
        SyncEvent
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    // The kernel sees these sizes; a change here is a map ABI change, and
    // pinned maps of the old size are refused at load (not misread).
    #[test]
    fn sizes_have_no_implicit_padding() {
        assert_eq!(size_of::<VipKey>(), 20);
        assert_eq!(size_of::<Service>(), 44);
        assert_eq!(size_of::<ServiceSlot>(), 64);
        assert_eq!(size_of::<Backend>(), 40);
        assert_eq!(size_of::<FlowKey>(), 40);
        assert_eq!(size_of::<Conn>(), 16);
        assert_eq!(size_of::<ConnCounts>(), 16);
        assert_eq!(size_of::<PersistKey>(), 20);
        assert_eq!(size_of::<PersistValue>(), 8);
        assert_eq!(size_of::<NatRev>(), 28);
        assert_eq!(size_of::<Iface>(), 12);
        assert_eq!(size_of::<Settings>(), 48);
        assert_eq!(size_of::<Counters>(), 24);
        assert_eq!(size_of::<SyncEvent>(), 52);
    }

    // The program counts an XDP verdict under the verdict's own code.
    #[test]
    fn counters_follow_their_list() {
        assert_eq!(
            [
                stat::ABORTED,
                stat::DROP,
                stat::PASS,
                stat::TX,
                stat::REDIRECT
            ],
            [0, 1, 2, 3, 4]
        );
        assert_eq!(stat::MALFORMED_L4 as usize, stat::COUNT - 1);
        assert_eq!(stat::NAMES[stat::NAT_REPLY as usize], "nat_replies");
    }

    #[test]
    fn sh_bucket_matches_ipvs_hash() {
        // 10.0.0.1, no port: hash_32(0x0a000001, 8).
        let addr = [u32::from_ne_bytes([10, 0, 0, 1]), 0, 0, 0];
        assert_eq!(
            sh_bucket(&addr, 0),
            (0x0a00_0001u32.wrapping_mul(0x61c8_8647)) >> 24
        );
    }
}
