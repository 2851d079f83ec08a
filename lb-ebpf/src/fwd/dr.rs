//! DR (direct routing, IPVS's "gatewaying"): the frame goes back out to the
//! backend's MAC, unchanged above L2; the backend holds the VIP and
//! replies to the client directly.

use aya_ebpf::bindings::xdp_action;
use lb_common::Backend;

use crate::ctx::Net;
use crate::frame::at_mut;
use crate::headers::{copy_mac, EthHdr};

/// Only frames addressed to this interface get here (checked on entry), so
/// the old destination is our own MAC: it becomes the source.
#[inline(always)]
pub fn xmit<C: Net>(ctx: &C, backend: &Backend) -> Result<u32, ()> {
    let EthHdr { dst, src, .. } = at_mut(ctx, 0)?;
    copy_mac(src, dst);
    copy_mac(dst, &backend.mac);
    Ok(xdp_action::XDP_TX)
}
