//! The program's maps. Their keys and values are defined in `lb-common`.
//!
//! `FLOWS` is one LRU table shared by all CPUs rather than per-CPU: a veth or
//! a NIC without flow steering can deliver one flow's packets on several
//! CPUs, and a per-CPU table would then schedule the same flow twice. When
//! it is full the kernel evicts the least recently used flow, never refuses.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray},
};
use lb_common::{
    stat, Backend, Counters, FlowKey, FlowValue, Iface, Service, VipKey, FLOW_TABLE_SIZE,
    MAX_BACKENDS, MAX_IFACES, MAX_SCHEDULE, MAX_SERVICES,
};

#[map]
pub static SERVICES: HashMap<VipKey, Service> = HashMap::with_max_entries(MAX_SERVICES, 0);

#[map]
pub static BACKENDS: Array<Backend> = Array::with_max_entries(MAX_BACKENDS, 0);

/// Backend ids, `MAX_SCHEDULE` slots per service.
#[map]
pub static SCHEDULE: Array<u32> = Array::with_max_entries(MAX_SERVICES * MAX_SCHEDULE, 0);

/// Next schedule slot per service.
#[map]
pub static RR_CURSOR: Array<u64> = Array::with_max_entries(MAX_SERVICES, 0);

#[map]
pub static FLOWS: LruHashMap<FlowKey, FlowValue> = LruHashMap::with_max_entries(FLOW_TABLE_SIZE, 0);

#[map]
pub static IFACES: HashMap<u32, Iface> = HashMap::with_max_entries(MAX_IFACES, 0);

#[map]
pub static GLOBAL_STATS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(stat::LEN, 0);

#[map]
pub static SERVICE_STATS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(MAX_SERVICES, 0);

#[inline(always)]
fn bump(map: &PerCpuArray<Counters>, index: u32, bytes: u64) {
    if let Some(c) = map.get_ptr_mut(index) {
        // SAFETY: per-CPU value, only this CPU writes it while we run.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += bytes;
        }
    }
}

#[inline(always)]
pub fn count_global(index: u32, bytes: u64) {
    bump(&GLOBAL_STATS, index, bytes);
}

#[inline(always)]
pub fn count_service(id: u32, bytes: u64) {
    bump(&SERVICE_STATS, id, bytes);
}
