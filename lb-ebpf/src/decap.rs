//! The backend side of TUN: `tc_decap`, for backends whose kernel has no
//! ipip/ip6tnl device to unwrap what the balancer's `fwd::tun` wrapped.

use aya_ebpf::{bindings::TC_ACT_OK, macros::classifier, programs::TcContext};

use crate::frame::at;
use crate::headers::{EthHdr, Ipv4Hdr, Ipv6Hdr, ETH_P_IPV4, ETH_P_IPV6, IPPROTO_IPIP, IPPROTO_IPV6};

/// TC ingress on a TUN backend: strips the outer IPIP / IP6IP6 header so
/// the inner packet, addressed to the VIP the backend holds on `lo`, is
/// delivered (the role of an ipip/ip6tnl device, for kernels without one).
#[classifier]
pub fn tc_decap(ctx: TcContext) -> i32 {
    let Ok(strip) = outer_len(&ctx) else {
        return TC_ACT_OK;
    };
    // BPF_ADJ_ROOM_MAC: remove the bytes right after the MAC header.
    // SAFETY: a helper call on the skb this program was given; the length
    // is that of a header the frame holds.
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

/// The length of the outer IPIP / IP6IP6 header to strip; `Err` when the
/// frame is not such a tunnel packet (or too short to tell).
#[inline(always)]
fn outer_len(ctx: &TcContext) -> Result<usize, ()> {
    let eth: &EthHdr = at(ctx, 0)?;
    if eth.ether_type == ETH_P_IPV4 {
        let ip: &Ipv4Hdr = at(ctx, EthHdr::LEN)?;
        if ip.version_ihl != 0x45 || ip.protocol != IPPROTO_IPIP {
            return Err(());
        }
        Ok(Ipv4Hdr::LEN)
    } else if eth.ether_type == ETH_P_IPV6 {
        let ip: &Ipv6Hdr = at(ctx, EthHdr::LEN)?;
        if ip.nexthdr != IPPROTO_IPV6 {
            return Err(());
        }
        Ok(Ipv6Hdr::LEN)
    } else {
        Err(())
    }
}
