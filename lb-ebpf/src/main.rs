//! XDP data plane of the load balancer.
//!
//! `lb_xdp` parses Ethernet (with up to two VLAN tags), IPv4/IPv6 and
//! TCP/UDP, looks the destination up among the virtual services, keeps each
//! flow on the backend it was first given, and forwards in DR, NAT or TUN
//! mode. Everything that is not ours goes to the kernel untouched
//! (`XDP_PASS`): other addresses, ARP, fragments, IP options and extension
//! headers, malformed or truncated frames. The kernel, not us, decides what
//! to do with what we do not understand.
#![no_std]
#![no_main]
// atomic_xadd: the one atomic read-modify-write the BPF target offers.
#![allow(internal_features)]
#![feature(core_intrinsics)]

mod conn;
mod csum;
mod ctx;
mod fwd;
mod headers;
mod maps;
mod parse;
mod sched;

use aya_ebpf::{
    bindings::{xdp_action, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use ctx::Net;
use lb_common::{
    stat, svc, Backend, Conn, FlowKey, NatRev, PersistKey, PersistValue, Service, Settings, VipKey,
    AF_INET, AF_INET6, ALGO_LC, ALGO_WLC, BACKEND_F_READY, IPPROTO_TCP, MODE_NAT,
    VIP_FILTER_SHARED,
};

use headers::{
    EthHdr, Ipv4Hdr, Ipv6Hdr, ETH_P_IPV4, ETH_P_IPV6, IPPROTO_IPIP, IPPROTO_IPV6, TCP_SYN,
};
use maps::{
    count, count_flow, BACKENDS, CONNS, IFACES, NAT_REV, PERSIST, SERVICES, SERVICE_SLOTS,
    SETTINGS, VIP_FILTER,
};
use parse::{ptr_at, Pkt};

#[xdp]
pub fn lb_xdp(ctx: XdpContext) -> u32 {
    let len = (ctx.data_end() - ctx.data()) as u64;
    // Err means the frame is shorter than its headers claim: not ours to
    // judge, so the kernel gets it as it came.
    let action = process(&ctx, len).unwrap_or(xdp_action::XDP_PASS);
    count(action, len);
    action
}

/// The same balancer at TC ingress (clsact), for interfaces where XDP
/// cannot serve. Verdicts: PASS → TC_ACT_OK, TX → out of the interface it
/// came in on, REDIRECT → as requested, DROP/ABORTED → TC_ACT_SHOT.
#[classifier]
pub fn lb_tc(ctx: TcContext) -> i32 {
    let len = ctx.len();
    // Direct access reaches only the linear part: pull the headers in.
    let linear = (ctx.data_end() - ctx.data()) as u32;
    if linear < len && linear < 128 {
        let _ = ctx.pull_data(if len < 128 { len } else { 128 });
    }
    let verdict = process(&ctx, u64::from(len)).unwrap_or(xdp_action::XDP_PASS);
    count(verdict, u64::from(len));
    match verdict {
        xdp_action::XDP_PASS => TC_ACT_OK,
        xdp_action::XDP_TX => {
            // SAFETY: plain helper call: out of the same interface.
            unsafe { aya_ebpf::helpers::generated::bpf_redirect(Net::ifindex(&ctx), 0) as i32 }
        }
        xdp_action::XDP_REDIRECT => TC_ACT_REDIRECT,
        _ => TC_ACT_SHOT,
    }
}

#[inline(always)]
fn process<C: Net>(ctx: &C, len: u64) -> Result<u32, ()> {
    let Some(pkt) = parse::parse(ctx, len as u32)? else {
        return Ok(xdp_action::XDP_PASS);
    };
    let settings = SETTINGS.get(0).ok_or(())?;
    // The VIP prefilter first: traffic for other destinations (the bulk of
    // what passes through) leaves before anything else is built.
    let filter = if pkt.icmp {
        0
    } else {
        let slot = lb_common::vip_filter_index(&pkt.dst, pkt.dport);
        VIP_FILTER.get(slot).copied().unwrap_or(0)
    };
    let vip = filter != 0;
    if !pkt.icmp && !vip && settings.nat_enabled == 0 {
        return Ok(xdp_action::XDP_PASS);
    }
    let family = if pkt.v6 { AF_INET6 } else { AF_INET };
    let key = FlowKey {
        src: pkt.src,
        dst: pkt.dst,
        sport: pkt.sport,
        dport: pkt.dport,
        proto: pkt.proto,
        family,
        _pad: [0; 2],
    };
    if pkt.icmp {
        if !for_us(ctx) {
            return Ok(xdp_action::XDP_PASS);
        }
        return icmp_error(ctx, &pkt, &key, len);
    }
    if !vip {
        // Not a VIP: perhaps a NAT reply.
        return nat_reply(ctx, &pkt, &key, len);
    }
    // Only frames addressed to this interface: a switch flooding a frame
    // meant for another balancer (a VRRP master) must not make this one
    // forward it too. (The FIB-less DR path needs the MAC anyway.)
    if !for_us(ctx) {
        return Ok(xdp_action::XDP_PASS);
    }
    let now = conn::now_ticks();

    let flow = match established(&pkt, &key, now, settings) {
        Ok(flow) => flow,
        Err(miss) => match new_flow(&pkt, &key, (family, filter), now, len, miss) {
            Ok(flow) => flow,
            Err(Unscheduled::NotAVip) if settings.nat_enabled != 0 => {
                // A prefilter collision: not a VIP after all. It may be a
                // NAT reply whose client address and port hash where a VIP
                // does (about one client port in a thousand with a dozen
                // VIPs).
                return nat_reply(ctx, &pkt, &key, len);
            }
            Err(_) => return Ok(xdp_action::XDP_PASS),
        },
    };
    // One place forwards both established and new flows: the forwarding
    // code is the bulk of the program, and one call site keeps one inlined
    // copy of it (the JIT image went from 22.8 to 19.2 KB).
    count_flow(flow.service, flow.id, len, flow.new);
    let rev = nat_entry(&pkt, flow.mode, flow.service, flow.id, flow.b, flow.rev);
    fwd::forward(ctx, &pkt, flow.mode, flow.b, rev.as_ref())
}

/// Where a VIP packet goes: its backend and how.
struct Flow {
    b: &'static Backend,
    id: u32,
    service: u32,
    mode: u8,
    /// The packet starts a new connection.
    new: bool,
    /// What NAT does to the flow's reverse entry.
    rev: RevUpdate,
}

/// What a NAT packet does to its flow's reverse entry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RevUpdate {
    Keep,
    /// Rewritten in place if there (once a second, when the flow's
    /// timestamp is; or a new connection on an old one's 5-tuple), else
    /// recorded, so an evicted entry heals.
    Refresh,
    /// A new flow: recorded.
    Record,
}

/// Why a VIP packet was not given a backend.
enum Unscheduled {
    /// The prefilter matched but no service has this address and port.
    NotAVip,
    /// No backend can take it (counted).
    NoBackend,
}

/// Why a VIP packet starts a new connection.
enum Miss {
    /// No entry. `lost`: a TCP packet without SYN, whose entry is gone
    /// (evicted, or never seen by this balancer).
    NoEntry { lost: bool },
    /// The entry is there but its connection is over (expired, reopened by
    /// a new SYN, or its backend left): the new connection takes it over.
    Over(*mut Conn),
}

/// The flow a packet belongs to, if its connection is live.
#[inline(always)]
fn established(pkt: &Pkt, key: &FlowKey, now: u32, settings: &Settings) -> Result<Flow, Miss> {
    let Some(c) = CONNS.get_ptr_mut(key) else {
        let lost = pkt.proto == IPPROTO_TCP && pkt.tcp_flags & TCP_SYN == 0;
        return Err(Miss::NoEntry { lost });
    };
    let entry = c;
    // SAFETY: a live entry of the LRU map; its value is plain data.
    let c = unsafe { &mut *c };
    if conn::fresh(c, now, settings) && !conn::reopens(c, pkt) {
        if let Some(b) = BACKENDS.get(c.backend) {
            if b.flags & BACKEND_F_READY != 0 && b.service == c.service {
                let refreshed = conn::track(c, pkt, now, settings.refresh);
                return Ok(Flow {
                    b,
                    id: c.backend,
                    service: c.service,
                    mode: c.mode,
                    new: false,
                    rev: if refreshed {
                        RevUpdate::Refresh
                    } else {
                        RevUpdate::Keep
                    },
                });
            }
        }
    }
    // Expired, reopened by a new SYN, or its backend left: the flow starts
    // over; its old connection no longer counts.
    if c.counted != 0 {
        conn::count_conn(c.backend, c.state, false);
        // Once: if no backend takes the new connection, the entry stays
        // and its next packet comes here again.
        c.counted = 0;
    }
    Err(Miss::Over(entry))
}

/// Whether the frame is addressed to the interface it arrived on.
#[inline(always)]
fn for_us<C: Net>(ctx: &C) -> bool {
    let Some(iface) = IFACES.get(ctx.ifindex()) else {
        count(stat::NO_IFACE, 0);
        return false;
    };
    let Ok(eth) = ptr_at::<EthHdr, C>(ctx, 0) else {
        return false;
    };
    // SAFETY: bounds checked by ptr_at.
    iface.present != 0 && unsafe { (*eth).dst } == iface.mac
}

/// Schedules a packet that starts a connection and records the flow.
#[inline(always)]
fn new_flow(
    pkt: &Pkt,
    key: &FlowKey,
    (family, filter): (u8, u32),
    now: u32,
    len: u64,
    miss: Miss,
) -> Result<Flow, Unscheduled> {
    let vip = VipKey {
        addr: pkt.dst,
        port: pkt.dport,
        proto: pkt.proto,
        family,
    };
    let Some(service) = service(&vip, filter) else {
        return Err(Unscheduled::NotAVip);
    };
    if let Miss::NoEntry { lost: true } = miss {
        // Scheduled again, which may move the flow: counted.
        count(stat::CONN_MISS, len);
    }
    let Some(id) = choose(service, pkt, now) else {
        count(stat::NO_BACKEND, len);
        return Err(Unscheduled::NoBackend);
    };
    let Some(b) = BACKENDS.get(id) else {
        return Err(Unscheduled::NoBackend);
    };
    if b.flags & BACKEND_F_READY == 0 {
        // Never a frame to an unknown MAC: the kernel gets it.
        count(stat::BACKEND_NOT_READY, len);
        return Err(Unscheduled::NoBackend);
    }
    let state = conn::initial_state(pkt);
    // Only lc and wlc weigh live connection counts: other services' flows
    // skip the atomic updates on the per-packet path.
    let counted = u8::from(service.algo == ALGO_LC || service.algo == ALGO_WLC);
    let c = Conn {
        backend: id,
        service: service.id,
        last_seen: now,
        state,
        mode: service.mode,
        counted,
        _pad: 0,
    };
    let rev = match miss {
        Miss::Over(_) => RevUpdate::Refresh,
        Miss::NoEntry { .. } => RevUpdate::Record,
    };
    let recorded = match miss {
        // Taken over in place: an LRU update (a new element, the old one
        // freed, three locks) cost a reused port about 280 ns more. The
        // lookup that found the entry marked it referenced, so an eviction
        // in the meantime passes it over (unless every entry it scans is as
        // recent, as with any in-place write to an LRU value).
        Miss::Over(entry) => {
            // SAFETY: a live entry of the LRU map, plain data.
            unsafe { *entry = c };
            true
        }
        Miss::NoEntry { .. } => CONNS.insert(key, &c, 0).is_ok(),
    };
    if !recorded {
        // The packet still goes to this backend; the flow's next packets
        // are scheduled again and may land elsewhere, so count it.
        count(stat::CONN_INSERT_FAILED, len);
    } else if counted != 0 {
        conn::count_conn(id, state, true);
    }
    if service.flags & svc::PERSIST != 0 {
        let pk = persist_key(service, pkt);
        let _ = PERSIST.insert(
            &pk,
            &PersistValue {
                backend: id,
                last_seen: now,
            },
            0,
        );
    }
    count(stat::NEW_CONN, len);
    Ok(Flow {
        b,
        id,
        service: service.id,
        mode: service.mode,
        new: true,
        rev,
    })
}

/// The service of `vip`, whose prefilter slot holds `filter`: the
/// service slot it names if that holds this address (another address there
/// means a prefilter collision: not a VIP), or, when several services share
/// the prefilter slot, `SERVICES`.
#[inline(always)]
fn service(vip: &VipKey, filter: u32) -> Option<&'static Service> {
    if filter == VIP_FILTER_SHARED {
        // SAFETY: values are plain data written whole by the daemon.
        return unsafe { SERVICES.get(vip) };
    }
    let s = SERVICE_SLOTS.get(filter.wrapping_sub(1))?;
    // Field by field: a derived comparison may become a memcmp call, which
    // BPF has no library for.
    let k = &s.vip;
    let same = k.addr[0] == vip.addr[0]
        && k.addr[1] == vip.addr[1]
        && k.addr[2] == vip.addr[2]
        && k.addr[3] == vip.addr[3]
        && k.port == vip.port
        && k.proto == vip.proto
        && k.family == vip.family;
    same.then_some(&s.service)
}

/// Persistence first (a client returning within the timeout goes back to
/// its backend if it can take flows), then the scheduler, then the sorry
/// server.
#[inline(always)]
fn choose(service: &Service, pkt: &Pkt, now: u32) -> Option<u32> {
    if service.flags & svc::PERSIST != 0 {
        let pk = persist_key(service, pkt);
        // SAFETY: plain data.
        if let Some(p) = unsafe { PERSIST.get(&pk) } {
            if now.wrapping_sub(p.last_seen) <= service.persist_timeout {
                if let Some(b) = BACKENDS.get(p.backend) {
                    if b.flags & BACKEND_F_READY != 0 && b.weight > 0 && b.service == service.id {
                        return Some(p.backend);
                    }
                }
            }
        }
    }
    if let Some(id) = sched::pick(service, pkt) {
        return Some(id);
    }
    if service.flags & svc::SORRY != 0 {
        return Some(service.sorry);
    }
    None
}

#[inline(always)]
fn persist_key(service: &Service, pkt: &Pkt) -> PersistKey {
    let m = service.persist_mask;
    PersistKey {
        addr: [
            pkt.src[0] & m[0],
            pkt.src[1] & m[1],
            pkt.src[2] & m[2],
            pkt.src[3] & m[3],
        ],
        service: service.id,
    }
}

/// For NAT flows: the reverse entry, recorded when the flow starts and
/// refreshed with it, so an evicted entry heals within a second.
#[inline(always)]
fn nat_entry(
    pkt: &Pkt,
    mode: u8,
    service: u32,
    backend: u32,
    b: &Backend,
    update: RevUpdate,
) -> Option<NatRev> {
    if mode != MODE_NAT {
        return None;
    }
    let rev = NatRev {
        vip: pkt.dst,
        vport: pkt.dport,
        _pad: [0; 2],
        service,
        backend,
    };
    if update != RevUpdate::Keep {
        fwd::nat_remember(pkt, b, &rev, update == RevUpdate::Refresh);
    }
    Some(rev)
}

/// A reply of a NAT flow (backend → client), or not ours.
#[inline(always)]
fn nat_reply<C: Net>(ctx: &C, pkt: &Pkt, key: &FlowKey, len: u64) -> Result<u32, ()> {
    if pkt.vlan {
        return Ok(xdp_action::XDP_PASS);
    }
    // SAFETY: plain data.
    let Some(rev) = (unsafe { NAT_REV.get(key) }) else {
        return Ok(xdp_action::XDP_PASS);
    };
    let rev = *rev;
    count(stat::NAT_REPLY, len);
    count_flow(rev.service, rev.backend, len, false);
    fwd::nat_in(ctx, pkt, &rev)
}

/// An ICMP error about a packet sent as the VIP (by a backend in DR and
/// TUN, which reply straight to clients; by us for NAT): it goes on to the
/// backend holding that flow, found by the quoted header. For NAT the
/// quote is turned back into what the backend sent (`fwd::nat_icmp`).
/// NAT also sees errors the other way, about a packet it sent on to a
/// backend: those go on to the client (`fwd::nat_icmp_in`).
#[inline(always)]
fn icmp_error<C: Net>(ctx: &C, pkt: &Pkt, key: &FlowKey, len: u64) -> Result<u32, ()> {
    // SAFETY: plain data.
    let Some(c) = (unsafe { CONNS.get(key) }) else {
        // Quoting client → backend, turned around: a reverse entry's key.
        // SAFETY: plain data.
        let Some(rev) = (unsafe { NAT_REV.get(key) }) else {
            return Ok(xdp_action::XDP_PASS);
        };
        let rev = *rev;
        count(stat::ICMP_FORWARDED, len);
        return fwd::nat_icmp_in(ctx, pkt, &rev);
    };
    let Some(b) = BACKENDS.get(c.backend) else {
        return Ok(xdp_action::XDP_PASS);
    };
    if b.flags & BACKEND_F_READY == 0 {
        return Ok(xdp_action::XDP_PASS);
    }
    count(stat::ICMP_FORWARDED, len);
    if c.mode == MODE_NAT {
        return fwd::nat_icmp(ctx, pkt, b);
    }
    fwd::forward(ctx, pkt, c.mode, b, None)
}

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
    let Ok(eth) = ptr_at::<EthHdr, _>(&ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    // SAFETY: ptr_at checked the frame holds an EthHdr.
    unsafe { core::mem::swap(&mut (*eth).dst, &mut (*eth).src) };
    xdp_action::XDP_TX
}

/// TC ingress on a TUN backend: strips the outer IPIP / IP6IP6 header so
/// the inner packet, addressed to the VIP the backend holds on `lo`, is
/// delivered (the role of an ipip/ip6tnl device, for kernels without one).
#[classifier]
pub fn tc_decap(ctx: TcContext) -> i32 {
    let data = ctx.data();
    let end = ctx.data_end();
    if data + EthHdr::LEN + Ipv6Hdr::LEN > end && data + EthHdr::LEN + Ipv4Hdr::LEN > end {
        return TC_ACT_OK;
    }
    // SAFETY: bounds checked above for the smaller header, below for IPv6.
    let eth = unsafe { &*(data as *const EthHdr) };
    let strip = if eth.ether_type == ETH_P_IPV4 {
        if data + EthHdr::LEN + Ipv4Hdr::LEN > end {
            return TC_ACT_OK;
        }
        let ip = unsafe { &*((data + EthHdr::LEN) as *const Ipv4Hdr) };
        if ip.version_ihl != 0x45 || ip.protocol != IPPROTO_IPIP {
            return TC_ACT_OK;
        }
        Ipv4Hdr::LEN
    } else if eth.ether_type == ETH_P_IPV6 {
        if data + EthHdr::LEN + Ipv6Hdr::LEN > end {
            return TC_ACT_OK;
        }
        let ip = unsafe { &*((data + EthHdr::LEN) as *const Ipv6Hdr) };
        if ip.nexthdr != IPPROTO_IPV6 {
            return TC_ACT_OK;
        }
        Ipv6Hdr::LEN
    } else {
        return TC_ACT_OK;
    };
    // BPF_ADJ_ROOM_MAC: remove the bytes right after the MAC header.
    // SAFETY: plain helper call on our own skb.
    unsafe {
        aya_ebpf::helpers::generated::bpf_skb_adjust_room(
            ctx.skb.skb,
            -(strip as i32),
            aya_ebpf::bindings::bpf_adj_room_mode::BPF_ADJ_ROOM_MAC,
            0,
        );
    }
    TC_ACT_OK
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
