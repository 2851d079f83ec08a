//! TUN (IP tunnelling): the IP packet is wrapped in an outer header to the
//! backend (IPIP for IPv4, IP6IP6 for IPv6), from the balancer's tunnel
//! address; the backend unwraps it (an ipip/ip6tnl device, or `tc_decap`)
//! and replies to the client directly.

use aya_ebpf::bindings::xdp_action;
use lb_common::{stat, Backend};

use super::{fib_send, next_hop, send_to_hop};
use crate::csum;
use crate::ctx::Net;
use crate::frame::at_mut;
use crate::headers::*;
use crate::maps::{count, SETTINGS};
use crate::parse::Pkt;

#[inline(always)]
pub fn xmit<C: Net>(ctx: &C, pkt: &Pkt, backend: &Backend) -> Result<u32, ()> {
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
    let src = if pkt.v6 {
        settings.tun_src6
    } else {
        [settings.tun_src4, 0, 0, 0]
    };
    if !encap(ctx, pkt, &src, &backend.addr)? {
        return Ok(xdp_action::XDP_PASS);
    }
    if let Some(iface) = hop {
        return send_to_hop(ctx, backend, iface);
    }
    fib_send(ctx, (inner_len + outer) as u32, pkt.v6, &src, &backend.addr)
}

/// Wraps the IP packet in an outer header from `src` to `dst` (the frame's
/// Ethernet header moved in front of it). `Ok(false)`: no headroom.
#[inline(always)]
pub fn encap<C: Net>(ctx: &C, pkt: &Pkt, src: &[u32; 4], dst: &[u32; 4]) -> Result<bool, ()> {
    let inner_len = pkt.frame_len as usize - EthHdr::LEN;
    // Every frame reference is derived again after this.
    if !ctx.push_head(if pkt.v6 { Ipv6Hdr::LEN } else { Ipv4Hdr::LEN } as u32) {
        return Ok(false);
    }
    at_mut::<EthHdr, C>(ctx, 0)?.ether_type = if pkt.v6 { ETH_P_IPV6 } else { ETH_P_IPV4 };
    if pkt.v6 {
        let ip: &mut Ipv6Hdr = at_mut(ctx, EthHdr::LEN)?;
        ip.vtc_flow = 0x6000_0000u32.to_be();
        ip.payload_len = (inner_len as u16).to_be();
        ip.nexthdr = IPPROTO_IPV6;
        ip.hop_limit = 64;
        ip.saddr = *src;
        ip.daddr = *dst;
    } else {
        let ip: &mut [u16; 10] = at_mut(ctx, EthHdr::LEN)?;
        let total = ((inner_len + Ipv4Hdr::LEN) as u16).to_be();
        let s = src[0];
        let d = dst[0];
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
        *ip = h;
    }
    Ok(true)
}
