//! XDP data plane of the load balancer.
//!
//! One program, `lb_xdp`: it parses Ethernet, IPv4 and TCP/UDP, looks the
//! destination up in `SERVICES`, keeps each flow on the backend it was first
//! given (`FLOWS`) and forwards in DR mode by rewriting MAC addresses and
//! sending the frame back out (`XDP_TX`). Everything that is not ours — other
//! addresses, ARP, IPv6, fragments, malformed or truncated frames — goes to
//! the kernel untouched (`XDP_PASS`): the kernel, not us, decides what to do
//! with what we do not understand.
#![no_std]
#![no_main]
// atomic_xadd: the one atomic read-modify-write the BPF target offers.
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod headers;
mod maps;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use lb_common::{
    stat, Backend, FlowKey, FlowValue, Service, VipKey, AF_INET, BACKEND_F_READY, IPPROTO_TCP,
    IPPROTO_UDP, MAX_SCHEDULE,
};

use headers::{EthHdr, Ipv4Hdr, TcpHdr, UdpHdr, ETH_P_IPV4, IPV4_FRAG_MASK};
use maps::{count_global, count_service, BACKENDS, FLOWS, IFACES, RR_CURSOR, SCHEDULE, SERVICES};

#[xdp]
pub fn lb_xdp(ctx: XdpContext) -> u32 {
    let len = (ctx.data_end() - ctx.data()) as u64;
    // Err means the frame is too short for what its headers announce: not
    // ours to judge, so the kernel gets it as it came.
    let action = process(&ctx, len).unwrap_or(xdp_action::XDP_PASS);
    count_global(action, len);
    action
}

/// Pointer to a `T` at `offset` into the frame, if the frame holds all of it.
#[inline(always)]
fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Result<*mut T, ()> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return Err(());
    }
    Ok((start + offset) as *mut T)
}

#[inline(always)]
fn process(ctx: &XdpContext, len: u64) -> Result<u32, ()> {
    let eth: *mut EthHdr = ptr_at(ctx, 0)?;
    // SAFETY: ptr_at checked the frame holds an EthHdr.
    if unsafe { (*eth).ether_type } != ETH_P_IPV4 {
        return Ok(xdp_action::XDP_PASS);
    }
    let ip: *const Ipv4Hdr = ptr_at(ctx, EthHdr::LEN)?;
    // SAFETY: bounds checked by ptr_at.
    let ip = unsafe { &*ip };
    // Options (IHL > 5) are left to the kernel: rare, and they would make the
    // L4 offset variable for no VIP traffic anyone sends.
    if ip.version_ihl != 0x45 {
        return Ok(xdp_action::XDP_PASS);
    }
    // A fragment has no L4 header (or only the first one has): the kernel
    // reassembles or drops it.
    if ip.frag_off & IPV4_FRAG_MASK != 0 {
        return Ok(xdp_action::XDP_PASS);
    }
    let l4 = EthHdr::LEN + Ipv4Hdr::LEN;
    let proto = ip.protocol;
    let l4_len = match proto {
        IPPROTO_TCP => TcpHdr::LEN,
        IPPROTO_UDP => UdpHdr::LEN,
        _ => return Ok(xdp_action::XDP_PASS),
    };
    // The whole L4 header must be present and inside the IP datagram.
    if u16::from_be(ip.tot_len) < (Ipv4Hdr::LEN + l4_len) as u16 {
        return Ok(xdp_action::XDP_PASS);
    }
    // Both TCP and UDP start with the two ports; check the full header length.
    let ports: *const [u16; 2] = ptr_at(ctx, l4)?;
    if proto == IPPROTO_TCP {
        ptr_at::<TcpHdr>(ctx, l4)?;
    } else {
        ptr_at::<UdpHdr>(ctx, l4)?;
    }
    // SAFETY: bounds checked above.
    let [sport, dport] = unsafe { *ports };

    let vip = VipKey {
        addr: [ip.daddr, 0, 0, 0],
        port: dport,
        proto,
        family: AF_INET,
    };
    // SAFETY: values are plain data written whole by the daemon.
    let Some(service) = (unsafe { SERVICES.get(&vip) }) else {
        return Ok(xdp_action::XDP_PASS);
    };
    let flow = FlowKey {
        src: [ip.saddr, 0, 0, 0],
        dst: [ip.daddr, 0, 0, 0],
        sport,
        dport,
        proto,
        family: AF_INET,
        _pad: [0; 2],
    };
    let Some(backend) = backend_for(&flow, service) else {
        return Ok(xdp_action::XDP_PASS);
    };
    let Some(iface) = IFACES.get_ptr(ctx.ingress_ifindex() as u32) else {
        count_global(stat::NO_IFACE, len);
        return Ok(xdp_action::XDP_PASS);
    };
    // SAFETY: both pointers were checked; the frame is writable in XDP.
    unsafe {
        (*eth).dst = backend.mac;
        (*eth).src = (*iface).mac;
    }
    count_service(service.id, len);
    Ok(xdp_action::XDP_TX)
}

/// The backend for `flow`: the one it already has, or a new pick.
#[inline(always)]
fn backend_for(flow: &FlowKey, service: &Service) -> Option<&'static Backend> {
    // SAFETY: FlowValue is written whole by this program.
    if let Some(known) = unsafe { FLOWS.get(flow) } {
        if known.service == service.id {
            if let Some(backend) = BACKENDS.get(known.backend) {
                // A backend slot the daemon released (flags cleared) no
                // longer takes traffic: the flow is scheduled anew.
                if backend.flags & BACKEND_F_READY != 0 {
                    return Some(backend);
                }
            }
        }
    }
    let len = if service.sched_len > MAX_SCHEDULE {
        MAX_SCHEDULE
    } else {
        service.sched_len
    };
    if len == 0 {
        count_global(stat::NO_BACKEND, 0);
        return None;
    }
    // One cursor per service shared by all CPUs, so new flows alternate across
    // backends whichever CPU receives them, as IPVS's rr does.
    let cursor = RR_CURSOR.get_ptr_mut(service.id)?;
    // SAFETY: the pointer is a valid, 8-byte aligned u64 in the array map's
    // value (the BPF target only has 64-bit atomics).
    // core's AtomicU64 has no fetch_add on this target (no CAS), but the
    // BPF instruction set has an atomic fetch-and-add: use it directly.
    // SeqCst, not Relaxed: LLVM 22 lowers a relaxed xadd to the non-fetching
    // `lock +=` even when the result is used, so every flow would read 1.
    // The xdp_test_run rr test catches that.
    let turn = unsafe {
        core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::SeqCst }>(
            cursor, 1,
        )
    };
    let slot = service.id * MAX_SCHEDULE + (turn % len as u64) as u32;
    let id = *SCHEDULE.get(slot)?;
    let backend = BACKENDS.get(id)?;
    if backend.flags & BACKEND_F_READY == 0 {
        // Never send a frame with an unknown MAC: the kernel gets it.
        count_global(stat::BACKEND_NOT_READY, 0);
        return None;
    }
    let value = FlowValue {
        backend: id,
        service: service.id,
    };
    if FLOWS.insert(flow, &value, 0).is_err() {
        // The flow still goes to this backend; its next packets are
        // scheduled again and may land elsewhere, so count it.
        count_global(stat::FLOW_INSERT_FAILED, 0);
    }
    count_global(stat::NEW_FLOW, 0);
    Some(backend)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

/// A bare XDP_PASS: the cost baseline for benchmarks, and what a veth peer
/// needs attached so native XDP_TX frames are delivered to it.
#[xdp]
pub fn xdp_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// Swaps the Ethernet addresses and sends the frame back: the cheapest
/// possible forwarder, printed beside the balancer's costs in benchmarks.
#[xdp]
pub fn xdp_swap_mac(ctx: XdpContext) -> u32 {
    let Ok(eth) = ptr_at::<EthHdr>(&ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at checked the frame holds an EthHdr.
    unsafe { core::mem::swap(&mut (*eth).dst, &mut (*eth).src) };
    xdp_action::XDP_TX
}
