//! Baselines for the data-plane benchmark (`lb-bench-dataplane`), loaded
//! from the same object as the balancer so both are measured alike. The
//! tests also attach `xdp_pass` to veth peers.
//!
//! The floors: what each forwarding method costs with no state at all (no
//! service, connection or backend lookup), the same parse and the same
//! rewrite as the balancer, to a fixed backend. The bench prints each
//! fixture's overhead above its method's floor: swap-MAC for DR,
//! `xdp_floor_tun` (a fixed IPIP/IP6IP6 encapsulation) for TUN,
//! `xdp_floor_nat` (a fixed destination rewrite) for NAT.

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

use crate::frame::at_mut;
use crate::fwd::{nat, tun};
use crate::headers::{copy_mac, EthHdr};
use crate::parse::{self, Pkt};

/// The floors' fixed backend: 10.9.0.11 / fd09::11, port 80, MAC
/// 02:00:00:00:01:11 (the bench's first backend).
const FLOOR_V4: [u32; 4] = [u32::from_ne_bytes([10, 9, 0, 11]), 0, 0, 0];
const FLOOR_V6: [u32; 4] = [
    u32::from_ne_bytes([0xfd, 0x09, 0, 0]),
    0,
    0,
    u32::from_ne_bytes([0, 0, 0, 0x11]),
];
const FLOOR_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x01, 0x11];
/// The floors' fixed tunnel source: 10.9.0.1 / fd09::1.
const FLOOR_SRC_V4: [u32; 4] = [u32::from_ne_bytes([10, 9, 0, 1]), 0, 0, 0];
const FLOOR_SRC_V6: [u32; 4] = [
    u32::from_ne_bytes([0xfd, 0x09, 0, 0]),
    0,
    0,
    u32::from_ne_bytes([0, 0, 0, 1]),
];

/// The parsed packet a floor rewrites; frames not the balancer's pass.
#[inline(always)]
fn floor_pkt(ctx: &XdpContext) -> Option<Pkt> {
    let len = (ctx.data_end() - ctx.data()) as u32;
    match parse::parse(ctx, len) {
        Ok(Some(pkt)) if !pkt.icmp && !pkt.vlan => Some(pkt),
        _ => None,
    }
}

/// Out to the fixed backend's MAC from our own (the frame's destination).
#[inline(always)]
fn floor_send(ctx: &XdpContext) -> u32 {
    let Ok(EthHdr { dst, src, .. }) = at_mut::<EthHdr, _>(ctx, 0) else {
        return xdp_action::XDP_ABORTED;
    };
    copy_mac(src, dst);
    copy_mac(dst, &FLOOR_MAC);
    xdp_action::XDP_TX
}

/// TUN's floor: parse, wrap in IPIP (IP6IP6) to the fixed backend, send.
#[xdp]
pub fn xdp_floor_tun(ctx: XdpContext) -> u32 {
    let Some(pkt) = floor_pkt(&ctx) else {
        return xdp_action::XDP_PASS;
    };
    let (src, dst) = if pkt.v6 {
        (&FLOOR_SRC_V6, &FLOOR_V6)
    } else {
        (&FLOOR_SRC_V4, &FLOOR_V4)
    };
    match tun::encap(&ctx, &pkt, src, dst) {
        Ok(true) => floor_send(&ctx),
        Ok(false) => xdp_action::XDP_PASS,
        Err(()) => xdp_action::XDP_ABORTED,
    }
}

/// NAT's floor: parse, rewrite the destination to the fixed backend (with
/// the checksums), send.
#[xdp]
pub fn xdp_floor_nat(ctx: XdpContext) -> u32 {
    let Some(pkt) = floor_pkt(&ctx) else {
        return xdp_action::XDP_PASS;
    };
    let dst = if pkt.v6 { &FLOOR_V6 } else { &FLOOR_V4 };
    match nat::rewrite(&ctx, &pkt, nat::End::Dst, dst, 80u16.to_be()) {
        Ok(()) => floor_send(&ctx),
        Err(()) => xdp_action::XDP_ABORTED,
    }
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
    let Ok(EthHdr { dst, src, .. }) = at_mut::<EthHdr, _>(&ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    core::mem::swap(dst, src);
    xdp_action::XDP_TX
}
