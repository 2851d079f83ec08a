//! ICMP errors about the balancer's flows: recognising them (`parse_error`,
//! called by the parser), finding the flow they are about (`handle`), and
//! for NAT, rewriting them so each side can match the error to its own
//! connection (`nat_rewrite`), as IPVS's `ip_vs_in_icmp`/`ip_vs_out_icmp`
//! do.
//!
//! An ICMP error about a packet sent as the VIP (by a backend in DR and
//! TUN, which reply straight to clients; by us for NAT) goes on to the
//! backend holding that flow, found by the quoted header. For NAT the quote
//! is turned back into what the backend sent. NAT also sees errors the
//! other way, about a packet it sent on to a backend: those go on to the
//! client.

use aya_ebpf::bindings::xdp_action;
use lb_common::{
    stat, Backend, FlowKey, NatRev, BACKEND_F_READY, IPPROTO_TCP, IPPROTO_UDP, MODE_NAT,
};

use crate::csum;
use crate::ctx::Net;
use crate::frame::{at, at_mut};
use crate::fwd::{self, nat};
use crate::headers::*;
use crate::maps::{self, count, BACKENDS};
use crate::parse::Pkt;

/// An ICMP destination-unreachable (v4, type 3) or packet-too-big (v6,
/// type 2) quoting a packet the VIP sent (or, NAT, one sent on to a
/// backend): the flow of that packet, turned around, so the error can
/// follow the flow.
#[inline(always)]
pub fn parse_error<C: Net>(ctx: &C, mut pkt: Pkt, error_type: u8) -> Result<Option<Pkt>, ()> {
    if at::<IcmpHdr, C>(ctx, pkt.l4)?.kind != error_type {
        return Ok(None);
    }
    let inner = pkt.l4 + IcmpHdr::LEN;
    let (proto, inner_l4, src, dst) = if pkt.v6 {
        let ip: &Ipv6Hdr = at(ctx, inner)?;
        (ip.nexthdr, inner + Ipv6Hdr::LEN, ip.saddr, ip.daddr)
    } else {
        let ip: &Ipv4Hdr = at(ctx, inner)?;
        if ip.version_ihl != 0x45 {
            return Ok(None);
        }
        (
            ip.protocol,
            inner + Ipv4Hdr::LEN,
            [ip.saddr, 0, 0, 0],
            [ip.daddr, 0, 0, 0],
        )
    };
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return Ok(None);
    }
    // The quoted packet went VIP → client (or, NAT, client → backend);
    // only its ports are needed.
    let [qsport, qdport] = *at::<[u16; 2], C>(ctx, inner_l4)?;
    pkt.proto = proto;
    pkt.src = dst;
    pkt.dst = src;
    pkt.sport = qdport;
    pkt.dport = qsport;
    pkt.icmp = true;
    Ok(Some(pkt))
}

/// An ICMP error about one of our flows (`key`: the quoted flow, turned
/// around): on to the backend holding it, or, for an error about a packet
/// NAT sent on to a backend, on to the client.
#[inline(always)]
pub fn handle<C: Net>(ctx: &C, pkt: &Pkt, key: &FlowKey, len: u64) -> Result<u32, ()> {
    let Some(c) = maps::conn(key) else {
        // Quoting client → backend, turned around: a reverse entry's key.
        let Some(rev) = maps::nat_rev(key) else {
            return Ok(xdp_action::XDP_PASS);
        };
        count(stat::ICMP_FORWARDED, len);
        return nat_to_client(ctx, pkt, &rev);
    };
    let Some(b) = BACKENDS.get(c.backend) else {
        return Ok(xdp_action::XDP_PASS);
    };
    if b.flags & BACKEND_F_READY == 0 {
        return Ok(xdp_action::XDP_PASS);
    }
    count(stat::ICMP_FORWARDED, len);
    if c.mode == MODE_NAT {
        return nat_to_backend(ctx, pkt, b);
    }
    fwd::forward(ctx, pkt, c.mode, b, None)
}

/// Which way a NAT ICMP error goes, and so which of the quoted packet's
/// ends the rewrite changes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Toward {
    /// The error is about a reply (VIP → client, as the balancer sent it):
    /// the outer destination and the quoted source become the backend's.
    Backend,
    /// The error is about a packet on its way to a backend (client →
    /// backend, as the balancer rewrote it): the outer source and the
    /// quoted destination become the VIP's.
    Client,
}

/// NAT: an ICMP error about a reply goes on to the backend that sent the
/// reply, as IPVS does.
#[inline(always)]
fn nat_to_backend<C: Net>(ctx: &C, pkt: &Pkt, backend: &Backend) -> Result<u32, ()> {
    if pkt.vlan {
        return Ok(xdp_action::XDP_PASS);
    }
    // The flow was turned around: its destination is the VIP.
    let vip = pkt.dst;
    nat_rewrite(ctx, pkt, Toward::Backend, &vip, &backend.addr, backend.port)?;
    nat::to_backend(ctx, pkt, backend, &vip)
}

/// NAT: an ICMP error about a packet on its way to a backend, from the
/// backend or a router next to it, goes on to the client as an error about
/// the packet the client sent, as IPVS does. Without this the client could
/// not match the error to its connection.
#[inline(always)]
fn nat_to_client<C: Net>(ctx: &C, pkt: &Pkt, rev: &NatRev) -> Result<u32, ()> {
    if pkt.vlan {
        return Ok(xdp_action::XDP_PASS);
    }
    // The flow was turned around: backend → client.
    let (backend, client) = (pkt.src, pkt.dst);
    nat_rewrite(ctx, pkt, Toward::Client, &backend, &rev.vip, rev.vport)?;
    fwd::fib_send(ctx, pkt.frame_len - pkt.l3 as u32, pkt.v6, &rev.vip, &client)
}

/// Rewrites a NAT ICMP error `toward` one side: the outer address on that
/// side's end (destination toward the backend, source toward the client)
/// and the quoted packet's matching address, `quoted` → `addr`, and its
/// port → `port`. The outer IPv4, quoted IPv4 and ICMP checksums follow
/// (the ICMPv6 one covers the outer address too). The quoted TCP/UDP
/// checksum stays as quoted: a receiver matches the quote to its socket and
/// does not check it (IPVS leaves it too).
#[inline(always)]
fn nat_rewrite<C: Net>(
    ctx: &C,
    pkt: &Pkt,
    toward: Toward,
    quoted: &[u32; 4],
    addr: &[u32; 4],
    port: u16,
) -> Result<(), ()> {
    let to_backend = toward == Toward::Backend;
    let inner = pkt.l4 + IcmpHdr::LEN;
    let icmp: &mut IcmpHdr = at_mut(ctx, pkt.l4)?;
    let mut check = icmp.check;
    let ports = if pkt.v6 {
        let ip: &mut Ipv6Hdr = at_mut(ctx, pkt.l3)?;
        let q: &mut Ipv6Hdr = at_mut(ctx, inner)?;
        // Toward the backend the outer destination is the VIP, the quoted
        // source; toward the client the outer source is whoever sent the
        // error.
        let outer = if to_backend { &mut ip.daddr } else { &mut ip.saddr };
        let from = if to_backend { *quoted } else { *outer };
        *outer = *addr;
        if to_backend {
            q.saddr = *addr;
        } else {
            q.daddr = *addr;
        }
        // The pseudo-header's address, then the quote's.
        check = csum::replace_addr(check, &from, addr, true);
        check = csum::replace_addr(check, quoted, addr, true);
        inner + Ipv6Hdr::LEN
    } else {
        let ip: &mut Ipv4Hdr = at_mut(ctx, pkt.l3)?;
        let q: &mut Ipv4Hdr = at_mut(ctx, inner)?;
        let outer = if to_backend { &mut ip.daddr } else { &mut ip.saddr };
        let from = if to_backend { quoted[0] } else { *outer };
        *outer = addr[0];
        ip.check = csum::replace4(ip.check, from, addr[0]);
        let old = q.check;
        let new = csum::replace4(old, quoted[0], addr[0]);
        if to_backend {
            q.saddr = addr[0];
        } else {
            q.daddr = addr[0];
        }
        q.check = new;
        check = csum::replace4(check, quoted[0], addr[0]);
        check = csum::replace2(check, old, new);
        inner + Ipv4Hdr::LEN
    };
    // The quoted source port toward the backend, its destination port
    // toward the client.
    let p: &mut u16 = at_mut(ctx, if to_backend { ports } else { ports + 2 })?;
    check = csum::replace2(check, *p, port);
    *p = port;
    icmp.check = check;
    Ok(())
}
