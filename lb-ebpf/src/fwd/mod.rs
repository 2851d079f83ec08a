//! Forwarding, split by method as the kernel splits `ip_vs_xmit.c`: DR
//! (`dr`, MAC rewrite), NAT (`nat`, address and port rewrite, both
//! directions) and TUN (`tun`, IPIP / IP6IP6 encapsulation). This module
//! holds what they share: the choice by mode and the way out (a resolved
//! next hop, else the kernel's FIB).
//!
//! NAT and TUN find their next hop in the kernel's FIB (`bpf_fib_lookup`),
//! so routes and neighbours are the kernel's; lbd keeps the next hops of
//! its NAT and TUN backends resolved, since XDP cannot ask for that. When
//! the FIB still has no answer (no route, neighbour not resolved yet,
//! forwarding disabled) the packet goes to the kernel already rewritten: a
//! NAT packet is then forwarded by the kernel; an encapsulated TUN packet,
//! whose source is the balancer's own address, is dropped by it as a
//! martian (unless `accept_local` is set). The balancer must have IP
//! forwarding on for NAT and TUN, as LVS needs too.
//! A TUN packet that would exceed the egress MTU once encapsulated also
//! goes to the stack (counted `too_big`). NAT and TUN of VLAN-tagged frames
//! are left to the stack too; DR keeps the tag.
//!
//! The FIB lookup costs more than the rest of the program, so when lbd has
//! resolved a backend's next hop (`BACKEND_F_NEXTHOP`) the packet goes
//! straight there; the FIB stays the fallback, and always serves NAT
//! replies (clients are too many to cache).

pub mod dr;
pub mod nat;
pub mod tun;

use aya_ebpf::bindings::xdp_action;
use lb_common::{
    stat, Backend, Iface, NatRev, AF_INET, AF_INET6, BACKEND_F_NEXTHOP, MODE_DR, MODE_NAT,
    MODE_TUN,
};

use crate::ctx::Net;
use crate::frame::at_mut;
use crate::headers::{copy_mac, EthHdr};
use crate::maps::{count, IFACES};
use crate::parse::Pkt;

/// Layout of `struct bpf_fib_lookup` (64 bytes), without bindgen's unions.
#[repr(C)]
struct FibParams {
    family: u8,
    l4_protocol: u8,
    sport: u16,
    dport: u16,
    /// In: packet length for the MTU check. Out: the MTU when too big.
    tot_len: u16,
    ifindex: u32,
    flowinfo: u32,
    src: [u32; 4],
    dst: [u32; 4],
    /// `vlan_TCI`, `vlan_proto`, `smac` and `dmac`, as words: zeroing or
    /// copying `[u8; 6]` fields costs a byte-loop call on BPF.
    tail: [u32; 4],
}

impl FibParams {
    /// Offsets of `smac` and `dmac` in `tail`.
    const SMAC: usize = 4;
    const DMAC: usize = 10;

    fn mac(&self, at: usize) -> &[u8; 6] {
        // SAFETY: at + 6 <= 16, within `tail`, which the reference borrows;
        // `[u8; 6]` has alignment 1 and is valid for any bytes.
        unsafe { &*((self.tail.as_ptr() as *const u8).add(at) as *const [u8; 6]) }
    }
}

const FIB_SUCCESS: i64 = 0;
const FIB_FRAG_NEEDED: i64 = 8;

/// Sends the frame to the backend by the mode the flow was started with.
#[inline(always)]
pub fn forward<C: Net>(
    ctx: &C,
    pkt: &Pkt,
    mode: u8,
    backend: &Backend,
    nat: Option<&NatRev>,
) -> Result<u32, ()> {
    match mode {
        MODE_DR => dr::xmit(ctx, backend),
        MODE_NAT => match nat {
            Some(rev) => nat::xmit(ctx, pkt, backend, rev),
            None => Ok(xdp_action::XDP_PASS),
        },
        MODE_TUN => tun::xmit(ctx, pkt, backend),
        _ => Ok(xdp_action::XDP_PASS),
    }
}

/// The interface towards a backend's next hop, when the daemon resolved it.
#[inline(always)]
fn next_hop(backend: &Backend) -> Option<&'static Iface> {
    if backend.flags & BACKEND_F_NEXTHOP == 0 {
        return None;
    }
    let iface = IFACES.get(backend.oif)?;
    if iface.present == 0 {
        return None;
    }
    Some(iface)
}

/// Sends the frame to the backend's resolved next hop: MACs written, then
/// XDP_TX on the same interface or a redirect to another.
#[inline(always)]
fn send_to_hop<C: Net>(ctx: &C, backend: &Backend, iface: &Iface) -> Result<u32, ()> {
    let eth: &mut EthHdr = at_mut(ctx, 0)?;
    copy_mac(&mut eth.dst, &backend.mac);
    copy_mac(&mut eth.src, &iface.mac);
    if backend.oif == ctx.ifindex() {
        return Ok(xdp_action::XDP_TX);
    }
    Ok(ctx.redirect(backend.oif))
}

/// Next hop from the kernel's FIB: MACs written, then XDP_TX on the same
/// interface or a redirect to another. Without an answer: to the stack.
#[inline(always)]
pub fn fib_send<C: Net>(
    ctx: &C,
    ip_len: u32,
    v6: bool,
    src: &[u32; 4],
    dst: &[u32; 4],
) -> Result<u32, ()> {
    let tot_len = ip_len as u16;
    let mut p = FibParams {
        family: if v6 { AF_INET6 } else { AF_INET },
        l4_protocol: 0,
        sport: 0,
        dport: 0,
        tot_len,
        ifindex: ctx.ifindex(),
        flowinfo: 0,
        src: *src,
        dst: *dst,
        tail: [1; 4],
    };
    // Zeroed by four stores: a zero literal becomes a byte-loop memset.
    for w in p.tail.iter_mut() {
        // SAFETY: a valid, aligned u32 we borrow mutably.
        unsafe { core::ptr::write_volatile(w, 0) };
    }
    // p has the kernel's struct bpf_fib_lookup layout and size.
    let rc = ctx.fib_lookup(
        (&mut p as *mut FibParams).cast(),
        core::mem::size_of::<FibParams>() as i32,
    );
    if rc == FIB_FRAG_NEEDED {
        count(stat::TOO_BIG, 0);
        return Ok(xdp_action::XDP_PASS);
    }
    if rc != FIB_SUCCESS {
        count(stat::FIB_MISS, 0);
        return Ok(xdp_action::XDP_PASS);
    }
    let eth: &mut EthHdr = at_mut(ctx, 0)?;
    copy_mac(&mut eth.dst, p.mac(FibParams::DMAC));
    copy_mac(&mut eth.src, p.mac(FibParams::SMAC));
    if p.ifindex == ctx.ifindex() {
        return Ok(xdp_action::XDP_TX);
    }
    Ok(ctx.redirect(p.ifindex))
}
