//! XDP data plane of the load balancer.
//!
//! `lb_xdp` parses Ethernet (with up to two VLAN tags), IPv4/IPv6 and
//! TCP/UDP, looks the destination up among the virtual services, keeps each
//! flow on the backend it was first given, and forwards in DR, NAT or TUN
//! mode. Everything that is not ours goes to the kernel untouched
//! (`XDP_PASS`): other addresses, ARP, fragments, IP options and extension
//! headers, malformed or truncated frames. The kernel, not us, decides what
//! to do with what we do not understand.
//!
//! This file holds the balancer's entry points (`lb_xdp`, `lb_tc`) and the
//! path they share (`process`). Around it: `parse` (frame → packet),
//! `flow` (established or new flow, scheduling call, persistence), `sched`
//! (the schedulers), `conn` (connection states), `fwd` (DR, NAT, TUN),
//! `icmp` (ICMP errors about our flows), `sync` (connection-sync reports), `frame` (bounds-checked access,
//! the one home of packet `unsafe`), `decap` (the backend-side program),
//! `baseline` (the benchmark's reference programs).
#![no_std]
#![no_main]
// atomic_xadd: the one atomic read-modify-write the BPF target offers.
#![allow(internal_features)]
#![feature(core_intrinsics)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod baseline;
mod conn;
mod csum;
mod ctx;
mod decap;
mod flow;
mod frame;
mod fwd;
mod headers;
mod icmp;
mod maps;
mod parse;
mod sched;
mod sync;

use aya_ebpf::{
    bindings::{xdp_action, TC_ACT_OK, TC_ACT_REDIRECT, TC_ACT_SHOT},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use ctx::Net;
use flow::Unscheduled;
use lb_common::{stat, FlowKey, AF_INET, AF_INET6};

use frame::at;
use headers::EthHdr;
use maps::{count, count_flow, IFACES, SETTINGS, VIP_FILTER};

// Inlined into the program's stub (the macro keeps this attribute on the
// body it wraps): a separate body would cost every packet a BPF-to-BPF
// call.
#[xdp]
#[inline(always)]
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
            // SAFETY: a helper call with plain numbers: out of the
            // interface the packet came in on.
            unsafe { aya_ebpf::helpers::generated::bpf_redirect(Net::ifindex(&ctx), 0) as i32 }
        }
        xdp_action::XDP_REDIRECT => TC_ACT_REDIRECT,
        _ => TC_ACT_SHOT,
    }
}

/// The path both hooks share, from the frame to an XDP verdict. `Err`: the
/// frame is shorter than its headers claim.
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
        return icmp::handle(ctx, &pkt, &key, len);
    }
    if !vip {
        // Not a VIP: perhaps a NAT reply.
        return fwd::nat::reply(ctx, &pkt, &key, len);
    }
    // Only frames addressed to this interface: a switch flooding a frame
    // meant for another balancer (a VRRP master) must not make this one
    // forward it too. (The FIB-less DR path needs the MAC anyway.)
    if !for_us(ctx) {
        return Ok(xdp_action::XDP_PASS);
    }
    let now = conn::now_ticks();

    let flow = match flow::established(&pkt, &key, now, settings) {
        Ok(flow) => flow,
        Err(miss) => match flow::new_flow(&pkt, &key, (family, filter), now, len, miss) {
            Ok(flow) => flow,
            Err(Unscheduled::NotAVip) if settings.nat_enabled != 0 => {
                // A prefilter collision: not a VIP after all. It may be a
                // NAT reply whose client address and port hash where a VIP
                // does (about one client port in a thousand with a dozen
                // VIPs).
                return fwd::nat::reply(ctx, &pkt, &key, len);
            }
            Err(_) => return Ok(xdp_action::XDP_PASS),
        },
    };
    // One place forwards both established and new flows: the forwarding
    // code is the bulk of the program, and one call site keeps one inlined
    // copy of it (a measurably smaller JIT image than two).
    count_flow(flow.service, flow.id, len, flow.new);
    let rev = flow::nat_entry(&pkt, flow.mode, flow.service, flow.id, flow.b, flow.rev);
    fwd::forward(ctx, &pkt, flow.mode, flow.b, rev.as_ref())
}

/// Whether the frame is addressed to the interface it arrived on.
#[inline(always)]
fn for_us<C: Net>(ctx: &C) -> bool {
    let Some(iface) = IFACES.get(ctx.ifindex()) else {
        count(stat::NO_IFACE, 0);
        return false;
    };
    let Ok(eth) = at::<EthHdr, C>(ctx, 0) else {
        return false;
    };
    // The address copied out first: comparing it in place, by reference,
    // compiles to twice the instructions.
    iface.present != 0 && { eth.dst } == iface.mac
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
