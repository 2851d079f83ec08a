//! NAT (masquerading): client → backend packets get the backend's address
//! and port as destination (`xmit`); the backend's replies come back
//! through the balancer and get the VIP's as source (`reply`). A reverse
//! entry (`NAT_REV`, recorded with the flow) leads a reply to its VIP.

use aya_ebpf::bindings::xdp_action;
use lb_common::{stat, Backend, FlowKey, NatRev, AF_INET, AF_INET6, IPPROTO_UDP};

use super::{fib_send, next_hop, send_to_hop};
use crate::csum;
use crate::ctx::Net;
use crate::frame::at_mut;
use crate::headers::*;
use crate::maps::{self, count, count_flow, NAT_REV};
use crate::parse::Pkt;

/// The reverse entry a NAT flow needs so its replies find their way back.
#[inline(always)]
pub fn rev_key(pkt: &Pkt, backend: &Backend) -> FlowKey {
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
pub fn remember(pkt: &Pkt, backend: &Backend, rev: &NatRev, refresh: bool) {
    let key = rev_key(pkt, backend);
    if refresh {
        if let Some(entry) = NAT_REV.get_ptr_mut(&key) {
            // In place: the lookup marks the entry recently used, as an
            // LRU update would, for a fraction of its cost.
            // SAFETY: a live entry of the LRU map, plain data; a racing
            // writer on another CPU writes the same value.
            unsafe { *entry = *rev };
            return;
        }
    }
    // Failure leaves the old entry or none; replies then go to the stack,
    // and the next refresh (within a second) tries again.
    let _ = NAT_REV.insert(&key, rev, 0);
}

/// Which end of the packet a rewrite changes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum End {
    Src,
    Dst,
}

/// Rewrites the destination (or source) address and port of the packet,
/// updating the IP and TCP/UDP checksums.
#[inline(always)]
pub fn rewrite<C: Net>(ctx: &C, pkt: &Pkt, end: End, addr: &[u32; 4], port: u16) -> Result<(), ()> {
    let dst = end == End::Dst;
    let (old_addr, old_port) = if dst {
        (pkt.dst, pkt.dport)
    } else {
        (pkt.src, pkt.sport)
    };
    if pkt.v6 {
        let ip: &mut Ipv6Hdr = at_mut(ctx, pkt.l3)?;
        if dst {
            ip.daddr = *addr;
        } else {
            ip.saddr = *addr;
        }
    } else {
        let ip: &mut Ipv4Hdr = at_mut(ctx, pkt.l3)?;
        if dst {
            ip.daddr = addr[0];
        } else {
            ip.saddr = addr[0];
        }
        ip.check = csum::replace4(ip.check, old_addr[0], addr[0]);
    }
    let check_off = if pkt.proto == IPPROTO_UDP {
        UdpHdr::CHECK
    } else {
        TcpHdr::CHECK
    };
    let check: &mut u16 = at_mut(ctx, pkt.l4 + check_off)?;
    let ports: &mut [u16; 2] = at_mut(ctx, pkt.l4)?;
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
    ports[if dst { 1 } else { 0 }] = port;
    Ok(())
}

/// Client → backend: the destination becomes the backend.
#[inline(always)]
pub fn xmit<C: Net>(ctx: &C, pkt: &Pkt, backend: &Backend, _rev: &NatRev) -> Result<u32, ()> {
    if pkt.vlan || pkt.icmp {
        return Ok(xdp_action::XDP_PASS);
    }
    rewrite(ctx, pkt, End::Dst, &backend.addr, backend.port)?;
    to_backend(ctx, pkt, backend, &pkt.src)
}

/// Sends a rewritten IP packet (not wrapped) to a NAT backend: straight to
/// its resolved next hop, else through the FIB (`src` the packet's source).
#[inline(always)]
pub fn to_backend<C: Net>(
    ctx: &C,
    pkt: &Pkt,
    backend: &Backend,
    src: &[u32; 4],
) -> Result<u32, ()> {
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

/// A reply of a NAT flow (backend → client), or not ours.
#[inline(always)]
pub fn reply<C: Net>(ctx: &C, pkt: &Pkt, key: &FlowKey, len: u64) -> Result<u32, ()> {
    if pkt.vlan {
        return Ok(xdp_action::XDP_PASS);
    }
    let Some(rev) = maps::nat_rev(key) else {
        return Ok(xdp_action::XDP_PASS);
    };
    count(stat::NAT_REPLY, len);
    count_flow(rev.service, rev.backend, len, false);
    to_client(ctx, pkt, &rev)
}

/// Backend → client: a reply gets the VIP back as its source.
#[inline(always)]
fn to_client<C: Net>(ctx: &C, pkt: &Pkt, rev: &NatRev) -> Result<u32, ()> {
    rewrite(ctx, pkt, End::Src, &rev.vip, rev.vport)?;
    fib_send(
        ctx,
        pkt.frame_len - pkt.l3 as u32,
        pkt.v6,
        &rev.vip,
        &pkt.dst,
    )
}
