//! Baselines for the data-plane benchmark (`lb-bench-dataplane`), loaded
//! from the same object as the balancer so both are measured alike. The
//! tests also attach `xdp_pass` to veth peers.

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

use crate::frame::at_mut;
use crate::headers::EthHdr;

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
