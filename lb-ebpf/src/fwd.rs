//! Forwarding: DR (MAC rewrite), NAT (address and port rewrite, both
//! directions) and TUN (IPIP / IP6IP6 encapsulation).
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

use aya_ebpf::bindings::xdp_action;
use lb_common::{
    stat, Backend, FlowKey, Iface, NatRev, AF_INET, AF_INET6, BACKEND_F_NEXTHOP, IPPROTO_UDP,
    MODE_DR, MODE_NAT, MODE_TUN,
};

use crate::csum;
use crate::ctx::Net;
use crate::headers::*;
use crate::maps::{count, IFACES, NAT_REV, SETTINGS};
use crate::parse::{ptr_at, Pkt};

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

    fn mac(&self, at: usize) -> *const u8 {
        // SAFETY: at + 6 <= 16, within `tail`.
        unsafe { (self.tail.as_ptr() as *const u8).add(at) }
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
        MODE_DR => dr(ctx, backend),
        MODE_NAT => match nat {
            Some(rev) => nat_out(ctx, pkt, backend, rev),
            None => Ok(xdp_action::XDP_PASS),
        },
        MODE_TUN => tun(ctx, pkt, backend),
        _ => Ok(xdp_action::XDP_PASS),
    }
}

/// DR: the frame goes back out to the backend's MAC, unchanged above L2.
/// Only frames addressed to this interface get here (checked on entry), so
/// the old destination is our own MAC: it becomes the source.
#[inline(always)]
pub fn dr<C: Net>(ctx: &C, backend: &Backend) -> Result<u32, ()> {
    let eth: *mut EthHdr = ptr_at(ctx, 0)?;
    // SAFETY: bounds checked; the frame is writable.
    unsafe {
        copy_mac((*eth).src.as_mut_ptr(), (*eth).dst.as_ptr());
        copy_mac((*eth).dst.as_mut_ptr(), backend.mac.as_ptr());
    }
    Ok(xdp_action::XDP_TX)
}

/// The reverse entry a NAT flow needs so its replies find their way back.
#[inline(always)]
pub fn nat_rev_key(pkt: &Pkt, backend: &Backend) -> FlowKey {
    // Word by word: a whole-array copy becomes a byte-loop call on BPF.
    let (a, c) = (&backend.addr, &pkt.src);
    FlowKey {
        src: [a[0], a[1], a[2], a[3]],
        dst: [c[0], c[1], c[2], c[3]],
        sport: backend.port,
        dport: pkt.sport,
        proto: pkt.proto,
        family: if pkt.v6 { AF_INET6 } else { AF_INET },
        _pad: [0; 2],
    }
}

/// Records (or, with `refresh`, refreshes) the reverse entry of a NAT flow.
#[inline(always)]
pub fn nat_remember(pkt: &Pkt, backend: &Backend, rev: &NatRev, refresh: bool) {
    let key = nat_rev_key(pkt, backend);
    if refresh {
        if let Some(entry) = NAT_REV.get_ptr_mut(&key) {
            // In place: the lookup marks the entry recently used, as an
            // LRU update would, for a fraction of its cost.
            // SAFETY: a live entry of the LRU map, plain data.
            unsafe { *entry = *rev };
            return;
        }
    }
    // Failure leaves the old entry or none; replies then go to the stack,
    // and the next refresh (within a second) tries again.
    let _ = NAT_REV.insert(&key, rev, 0);
}

/// Rewrites the destination (or source) address and port of the packet,
/// updating the IP and TCP/UDP checksums.
#[inline(always)]
fn rewrite<C: Net>(ctx: &C, pkt: &Pkt, dst: bool, addr: &[u32; 4], port: u16) -> Result<(), ()> {
    let (old_addr, old_port) = if dst {
        (pkt.dst, pkt.dport)
    } else {
        (pkt.src, pkt.sport)
    };
    if pkt.v6 {
        let ip: *mut Ipv6Hdr = ptr_at(ctx, pkt.l3)?;
        // SAFETY: bounds checked by ptr_at (here and below).
        unsafe {
            if dst {
                (*ip).daddr = *addr;
            } else {
                (*ip).saddr = *addr;
            }
        }
    } else {
        let ip: *mut Ipv4Hdr = ptr_at(ctx, pkt.l3)?;
        unsafe {
            if dst {
                (*ip).daddr = addr[0];
            } else {
                (*ip).saddr = addr[0];
            }
            (*ip).check = csum::replace4((*ip).check, old_addr[0], addr[0]);
        }
    }
    let check_off = if pkt.proto == IPPROTO_UDP {
        UdpHdr::CHECK
    } else {
        TcpHdr::CHECK
    };
    let check: *mut u16 = ptr_at(ctx, pkt.l4 + check_off)?;
    let ports: *mut [u16; 2] = ptr_at(ctx, pkt.l4)?;
    unsafe {
        // An IPv4 UDP checksum of zero means "none": it stays none.
        let none = pkt.proto == IPPROTO_UDP && !pkt.v6 && *check == 0;
        if !none {
            let mut c = csum::replace_addr(*check, &old_addr, addr, pkt.v6);
            c = csum::replace2(c, old_port, port);
            if pkt.proto == IPPROTO_UDP && c == 0 {
                c = 0xffff;
            }
            *check = c;
        }
        (*ports)[if dst { 1 } else { 0 }] = port;
    }
    Ok(())
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
    let eth: *mut EthHdr = ptr_at(ctx, 0)?;
    // SAFETY: bounds checked.
    unsafe {
        copy_mac((*eth).dst.as_mut_ptr(), backend.mac.as_ptr());
        copy_mac((*eth).src.as_mut_ptr(), iface.mac.as_ptr());
    }
    if backend.oif == ctx.ifindex() {
        return Ok(xdp_action::XDP_TX);
    }
    Ok(ctx.redirect(backend.oif))
}

/// NAT, client → backend: the destination becomes the backend.
#[inline(always)]
fn nat_out<C: Net>(ctx: &C, pkt: &Pkt, backend: &Backend, _rev: &NatRev) -> Result<u32, ()> {
    if pkt.vlan || pkt.icmp {
        return Ok(xdp_action::XDP_PASS);
    }
    rewrite(ctx, pkt, true, &backend.addr, backend.port)?;
    to_backend(ctx, pkt, backend, &pkt.src)
}

/// Sends a rewritten IP packet (not wrapped) to a NAT backend: straight to
/// its resolved next hop, else through the FIB (`src` the packet's source).
#[inline(always)]
fn to_backend<C: Net>(ctx: &C, pkt: &Pkt, backend: &Backend, src: &[u32; 4]) -> Result<u32, ()> {
    if let Some(iface) = next_hop(backend) {
        return send_to_hop(ctx, backend, iface);
    }
    fib_send(
        ctx,
        pkt.frame_len - pkt.l3 as u32,
        pkt.v6,
        src,
        &backend.addr,
    )
}

/// NAT, backend → client: a reply gets the VIP back as its source.
#[inline(always)]
pub fn nat_in<C: Net>(ctx: &C, pkt: &Pkt, rev: &NatRev) -> Result<u32, ()> {
    rewrite(ctx, pkt, false, &rev.vip, rev.vport)?;
    fib_send(
        ctx,
        pkt.frame_len - pkt.l3 as u32,
        pkt.v6,
        &rev.vip,
        &pkt.dst,
    )
}

/// NAT: an ICMP error about a reply (VIP → client, as the balancer sent
/// it) goes on to the backend that sent the reply, as IPVS does. The outer
/// destination and the quoted source address and port become the
/// backend's; the outer IPv4, quoted IPv4 and ICMP checksums follow (the
/// ICMPv6 one covers the outer destination too). The quoted TCP/UDP
/// checksum stays as quoted: a receiver matches the quote to its socket
/// and does not check it (IPVS leaves it too).
#[inline(always)]
pub fn nat_icmp<C: Net>(ctx: &C, pkt: &Pkt, backend: &Backend) -> Result<u32, ()> {
    if pkt.vlan {
        return Ok(xdp_action::XDP_PASS);
    }
    // The flow was turned around: its destination is the VIP.
    let vip = pkt.dst;
    let icmp: *mut IcmpHdr = ptr_at(ctx, pkt.l4)?;
    let inner = pkt.l4 + IcmpHdr::LEN;
    // SAFETY: bounds checked by ptr_at (here and below); the frame is
    // writable.
    unsafe {
        let mut check = (*icmp).check;
        let ports = if pkt.v6 {
            let ip: *mut Ipv6Hdr = ptr_at(ctx, pkt.l3)?;
            let quoted: *mut Ipv6Hdr = ptr_at(ctx, inner)?;
            (*ip).daddr = backend.addr;
            (*quoted).saddr = backend.addr;
            // Once for the pseudo-header's destination, once for the quote.
            check = csum::replace_addr(check, &vip, &backend.addr, true);
            check = csum::replace_addr(check, &vip, &backend.addr, true);
            inner + Ipv6Hdr::LEN
        } else {
            let ip: *mut Ipv4Hdr = ptr_at(ctx, pkt.l3)?;
            let quoted: *mut Ipv4Hdr = ptr_at(ctx, inner)?;
            (*ip).daddr = backend.addr[0];
            (*ip).check = csum::replace4((*ip).check, vip[0], backend.addr[0]);
            let old = (*quoted).check;
            let new = csum::replace4(old, vip[0], backend.addr[0]);
            (*quoted).saddr = backend.addr[0];
            (*quoted).check = new;
            check = csum::replace4(check, vip[0], backend.addr[0]);
            check = csum::replace2(check, old, new);
            inner + Ipv4Hdr::LEN
        };
        let sport: *mut u16 = ptr_at(ctx, ports)?;
        check = csum::replace2(check, *sport, backend.port);
        *sport = backend.port;
        (*icmp).check = check;
    }
    to_backend(ctx, pkt, backend, &vip)
}

/// NAT: an ICMP error about a packet on its way to a backend (client →
/// backend, as the balancer rewrote it), from the backend or a router next
/// to it, goes on to the client as an error about the packet the client
/// sent, as IPVS does: the outer source and the quoted destination address
/// and port become the VIP's; the outer IPv4, quoted IPv4 and ICMP
/// checksums follow (the ICMPv6 one covers the outer source too). Without
/// this the client could not match the error to its connection.
#[inline(always)]
pub fn nat_icmp_in<C: Net>(ctx: &C, pkt: &Pkt, rev: &NatRev) -> Result<u32, ()> {
    if pkt.vlan {
        return Ok(xdp_action::XDP_PASS);
    }
    // The flow was turned around: backend → client.
    let (backend, client) = (pkt.src, pkt.dst);
    let vip = rev.vip;
    let icmp: *mut IcmpHdr = ptr_at(ctx, pkt.l4)?;
    let inner = pkt.l4 + IcmpHdr::LEN;
    // SAFETY: bounds checked by ptr_at (here and below); the frame is
    // writable.
    unsafe {
        let mut check = (*icmp).check;
        let ports = if pkt.v6 {
            let ip: *mut Ipv6Hdr = ptr_at(ctx, pkt.l3)?;
            let quoted: *mut Ipv6Hdr = ptr_at(ctx, inner)?;
            let from = (*ip).saddr;
            (*ip).saddr = vip;
            (*quoted).daddr = vip;
            // The pseudo-header's source, then the quote's destination.
            check = csum::replace_addr(check, &from, &vip, true);
            check = csum::replace_addr(check, &backend, &vip, true);
            inner + Ipv6Hdr::LEN
        } else {
            let ip: *mut Ipv4Hdr = ptr_at(ctx, pkt.l3)?;
            let quoted: *mut Ipv4Hdr = ptr_at(ctx, inner)?;
            let from = (*ip).saddr;
            (*ip).saddr = vip[0];
            (*ip).check = csum::replace4((*ip).check, from, vip[0]);
            let old = (*quoted).check;
            let new = csum::replace4(old, backend[0], vip[0]);
            (*quoted).daddr = vip[0];
            (*quoted).check = new;
            check = csum::replace4(check, backend[0], vip[0]);
            check = csum::replace2(check, old, new);
            inner + Ipv4Hdr::LEN
        };
        let dport: *mut u16 = ptr_at(ctx, ports + 2)?;
        check = csum::replace2(check, *dport, rev.vport);
        *dport = rev.vport;
        (*icmp).check = check;
    }
    fib_send(ctx, pkt.frame_len - pkt.l3 as u32, pkt.v6, &vip, &client)
}

/// Next hop from the kernel's FIB: MACs written, then XDP_TX on the same
/// interface or a redirect to another. Without an answer: to the stack.
#[inline(always)]
fn fib_send<C: Net>(
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
        // SAFETY: a valid, aligned u32.
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
    let eth: *mut EthHdr = ptr_at(ctx, 0)?;
    // SAFETY: bounds checked.
    unsafe {
        copy_mac((*eth).dst.as_mut_ptr(), p.mac(FibParams::DMAC));
        copy_mac((*eth).src.as_mut_ptr(), p.mac(FibParams::SMAC));
    }
    if p.ifindex == ctx.ifindex() {
        return Ok(xdp_action::XDP_TX);
    }
    Ok(ctx.redirect(p.ifindex))
}

/// TUN: the IP packet is wrapped in an outer header to the backend
/// (IPIP for IPv4, IP6IP6 for IPv6), from the balancer's tunnel address.
#[inline(always)]
pub fn tun<C: Net>(ctx: &C, pkt: &Pkt, backend: &Backend) -> Result<u32, ()> {
    if pkt.vlan {
        return Ok(xdp_action::XDP_PASS);
    }
    let settings = SETTINGS.get(0).ok_or(())?;
    let inner_len = pkt.frame_len as usize - EthHdr::LEN;
    let outer = if pkt.v6 { Ipv6Hdr::LEN } else { Ipv4Hdr::LEN };
    let hop = next_hop(backend);
    if let Some(iface) = hop {
        // Too big once wrapped: left to the stack, unchanged (the FIB path
        // below makes the same check through bpf_fib_lookup).
        if (inner_len + outer) as u32 > iface.mtu {
            count(stat::TOO_BIG, 0);
            return Ok(xdp_action::XDP_PASS);
        }
    }
    // Every pointer is derived again after this.
    if !ctx.push_head(outer as u32) {
        return Ok(xdp_action::XDP_PASS);
    }
    let eth: *mut EthHdr = ptr_at(ctx, 0)?;
    let src;
    unsafe {
        (*eth).ether_type = if pkt.v6 { ETH_P_IPV6 } else { ETH_P_IPV4 };
    }
    if pkt.v6 {
        let ip: *mut Ipv6Hdr = ptr_at(ctx, EthHdr::LEN)?;
        src = settings.tun_src6;
        // SAFETY: bounds checked.
        unsafe {
            (*ip).vtc_flow = 0x6000_0000u32.to_be();
            (*ip).payload_len = (inner_len as u16).to_be();
            (*ip).nexthdr = IPPROTO_IPV6;
            (*ip).hop_limit = 64;
            (*ip).saddr = src;
            (*ip).daddr = backend.addr;
        }
    } else {
        let ip: *mut [u16; 10] = ptr_at(ctx, EthHdr::LEN)?;
        src = [settings.tun_src4, 0, 0, 0];
        let total = ((inner_len + Ipv4Hdr::LEN) as u16).to_be();
        let s = settings.tun_src4;
        let d = backend.addr[0];
        let mut h: [u16; 10] = [
            u16::from_be_bytes([0x45, 0]).to_be(),
            total,
            0,
            0,
            u16::from_be_bytes([64, IPPROTO_IPIP]).to_be(),
            0,
            s as u16,
            (s >> 16) as u16,
            d as u16,
            (d >> 16) as u16,
        ];
        h[5] = csum::ipv4_header(&h);
        // SAFETY: bounds checked.
        unsafe { *ip = h };
    }
    if let Some(iface) = hop {
        return send_to_hop(ctx, backend, iface);
    }
    fib_send(ctx, (inner_len + outer) as u32, pkt.v6, &src, &backend.addr)
}
