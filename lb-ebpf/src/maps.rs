//! The program's maps. Their keys and values are defined in `lb-common`.
//!
//! `CONNS` is one LRU table shared by all CPUs rather than one per CPU: a
//! veth or a NIC without flow steering can deliver one flow's packets on
//! several CPUs, and per-CPU tables would then schedule the same flow twice.
//! When it is full the kernel evicts the least recently used flow; a TCP
//! packet that then finds no entry is counted (`stat::CONN_MISS`) and
//! scheduled again, which sh and mh send to the same backend and rr may not.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use lb_common::{
    stat, Backend, Conn, ConnCounts, Counters, FlowKey, Iface, NatRev, PersistKey, PersistValue,
    Service, ServiceSlot, Settings, SyncControl, VipKey, CONN_TABLE_SIZE, MAX_BACKENDS, MAX_IFINDEX,
    MAX_SERVICES, PERSIST_TABLE_SIZE, SCHED_CAPACITY, SERVICE_SLOT_COUNT, SYNC_RING_BYTES,
    VIP_FILTER_SIZE,
};

#[map]
pub static SERVICES: HashMap<VipKey, Service> = HashMap::with_max_entries(MAX_SERVICES, 0);

#[map]
pub static BACKENDS: Array<Backend> = Array::with_max_entries(MAX_BACKENDS, 0);

/// Backend ids; each service owns a region (`Service::sched_off/len`).
#[map]
pub static SCHEDULE: Array<u32> = Array::with_max_entries(SCHED_CAPACITY, 0);

/// rr/wrr: the next turn of each service.
#[map]
pub static RR_CURSOR: Array<u64> = Array::with_max_entries(MAX_SERVICES, 0);

/// `BPF_F_NO_COMMON_LRU`: one LRU list per CPU (the table itself is shared),
/// so inserting a new flow takes no lock shared with other CPUs.
const NO_COMMON_LRU: u32 = 2;

#[map]
pub static CONNS: LruHashMap<FlowKey, Conn> =
    LruHashMap::with_max_entries(CONN_TABLE_SIZE, NO_COMMON_LRU);

#[map]
pub static BACKEND_CONNS: Array<ConnCounts> = Array::with_max_entries(MAX_BACKENDS, 0);

#[map]
pub static PERSIST: LruHashMap<PersistKey, PersistValue> =
    LruHashMap::with_max_entries(PERSIST_TABLE_SIZE, NO_COMMON_LRU);

/// NAT: a reply's flow (backend → client) → what it must look like.
#[map]
pub static NAT_REV: LruHashMap<FlowKey, NatRev> =
    LruHashMap::with_max_entries(CONN_TABLE_SIZE, NO_COMMON_LRU);

#[map]
pub static IFACES: Array<Iface> = Array::with_max_entries(MAX_IFINDEX, 0);

#[map]
pub static SETTINGS: Array<Settings> = Array::with_max_entries(1, 0);

/// Non-zero where some VIP's (address, port) hashes: an array read, so
/// traffic for other destinations leaves without a hash-table lookup. The
/// value also says where the service is (`lb_common::VIP_FILTER_SHARED`).
#[map]
pub static VIP_FILTER: Array<u32> = Array::with_max_entries(VIP_FILTER_SIZE, 0);

/// Services by prefilter slot: a new flow finds its service with an array
/// read instead of a `SERVICES` lookup (a hash-table lookup costs a new
/// flow measurably more). `SERVICES` stays the truth, and the way to a service when
/// several share a prefilter slot.
#[map]
pub static SERVICE_SLOTS: Array<ServiceSlot> = Array::with_max_entries(SERVICE_SLOT_COUNT, 0);

/// Connection sync: the reports (see `sync`), and whether to write them.
#[map]
pub static SYNC_EVENTS: RingBuf = RingBuf::with_byte_size(SYNC_RING_BYTES, 0);

#[map]
pub static SYNC_CONTROL: Array<SyncControl> = Array::with_max_entries(1, 0);

#[map]
pub static GLOBAL_STATS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(stat::LEN, 0);

#[map]
pub static SERVICE_STATS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(MAX_SERVICES, 0);

#[map]
pub static BACKEND_STATS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(MAX_BACKENDS, 0);

#[inline(always)]
fn bump(map: &PerCpuArray<Counters>, index: u32, bytes: u64, new_conn: bool) {
    if let Some(c) = map.get_ptr_mut(index) {
        // SAFETY: per-CPU value: only this CPU writes it while we run.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
            if new_conn {
                (*c).new_conns += 1;
            }
        }
    }
}

/// Counts a packet under a `stat` index.
#[inline(always)]
pub fn count(index: u32, bytes: u64) {
    bump(&GLOBAL_STATS, index, bytes, false);
}

/// Counts a forwarded packet for its service and backend.
#[inline(always)]
pub fn count_flow(service: u32, backend: u32, bytes: u64, new_conn: bool) {
    bump(&SERVICE_STATS, service, bytes, new_conn);
    bump(&BACKEND_STATS, backend, bytes, new_conn);
}

// Lookups in the hash maps. `HashMap::get` is unsafe because the value may
// change under the reference (another CPU, or the daemon, writing it); the
// values here are plain data written whole, so a reader sees the old or the
// new value, or at worst a mix that the next packet corrects.

/// The service at `vip`, from `SERVICES`.
#[inline(always)]
pub fn service(vip: &VipKey) -> Option<&'static Service> {
    // SAFETY: plain data, written whole by the daemon (see above).
    unsafe { SERVICES.get(vip) }
}

/// The tracked connection of `key`, from `CONNS`.
#[inline(always)]
pub fn conn(key: &FlowKey) -> Option<&'static Conn> {
    // SAFETY: plain data, written whole by the program (see above).
    unsafe { CONNS.get(key) }
}

/// The persistence entry of `key`, from `PERSIST`.
#[inline(always)]
pub fn persisted(key: &PersistKey) -> Option<&'static PersistValue> {
    // SAFETY: plain data, written whole by the program (see above).
    unsafe { PERSIST.get(key) }
}

/// The reverse entry of a NAT reply's flow, from `NAT_REV`, copied.
#[inline(always)]
pub fn nat_rev(key: &FlowKey) -> Option<NatRev> {
    // SAFETY: plain data, written whole by the program (see above).
    unsafe { NAT_REV.get(key) }.copied()
}
