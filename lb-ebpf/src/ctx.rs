//! What the forwarding logic needs from its hook, so one implementation
//! serves XDP and TC (clsact ingress, for devices or setups where XDP
//! cannot serve).
//!
//! The logic speaks in XDP's verdicts (`xdp_action`): PASS, TX (back out of
//! the interface it came in on), REDIRECT (to another interface, already
//! requested through `redirect`) and DROP. The TC entry point translates.

use aya_ebpf::{
    bindings::{bpf_adj_room_mode::BPF_ADJ_ROOM_MAC, xdp_action},
    helpers::generated as gen,
    programs::{TcContext, XdpContext},
};

pub trait Net {
    fn data(&self) -> usize;
    fn data_end(&self) -> usize;
    /// The interface the packet arrived on.
    fn ifindex(&self) -> u32;
    /// Makes room for `len` more bytes of headers after the Ethernet header
    /// (the Ethernet header itself must then be written again). Every packet
    /// pointer is invalid afterwards.
    fn push_head(&self, len: u32) -> bool;
    /// `bpf_fib_lookup` with a `struct bpf_fib_lookup` of `size` bytes.
    fn fib_lookup(&self, params: *mut core::ffi::c_void, size: i32) -> i64;
    /// Sends the packet out of `ifindex`; the verdict (REDIRECT, or ABORTED
    /// when the kernel refuses).
    fn redirect(&self, ifindex: u32) -> u32;
}

impl Net for XdpContext {
    #[inline(always)]
    fn data(&self) -> usize {
        XdpContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        XdpContext::data_end(self)
    }
    #[inline(always)]
    fn ifindex(&self) -> u32 {
        self.ingress_ifindex() as u32
    }
    #[inline(always)]
    fn push_head(&self, len: u32) -> bool {
        // The room appears in front; the writer lays Ethernet over it.
        // SAFETY: plain helper call.
        unsafe { gen::bpf_xdp_adjust_head(self.ctx, -(len as i32)) == 0 }
    }
    #[inline(always)]
    fn fib_lookup(&self, params: *mut core::ffi::c_void, size: i32) -> i64 {
        // SAFETY: params points at a struct of `size` bytes.
        unsafe { gen::bpf_fib_lookup(self.ctx.cast(), params.cast(), size, 0) }
    }
    #[inline(always)]
    fn redirect(&self, ifindex: u32) -> u32 {
        // SAFETY: plain helper call; in XDP it returns the verdict.
        unsafe { gen::bpf_redirect(ifindex, 0) as u32 }
    }
}

impl Net for TcContext {
    #[inline(always)]
    fn data(&self) -> usize {
        TcContext::data(self)
    }
    #[inline(always)]
    fn data_end(&self) -> usize {
        TcContext::data_end(self)
    }
    #[inline(always)]
    fn ifindex(&self) -> u32 {
        // SAFETY: reading the context the program was given.
        unsafe { (*self.skb.skb).ifindex }
    }
    #[inline(always)]
    fn push_head(&self, len: u32) -> bool {
        // The room appears after the MAC header, which stays (and is then
        // written over, like XDP's).
        self.adjust_room(len as i32, BPF_ADJ_ROOM_MAC, 0).is_ok()
    }
    #[inline(always)]
    fn fib_lookup(&self, params: *mut core::ffi::c_void, size: i32) -> i64 {
        // SAFETY: params points at a struct of `size` bytes.
        unsafe { gen::bpf_fib_lookup(self.skb.skb.cast(), params.cast(), size, 0) }
    }
    #[inline(always)]
    fn redirect(&self, ifindex: u32) -> u32 {
        // SAFETY: plain helper call; in TC it returns TC_ACT_REDIRECT.
        if unsafe { gen::bpf_redirect(ifindex, 0) }
            == i64::from(aya_ebpf::bindings::TC_ACT_REDIRECT)
        {
            xdp_action::XDP_REDIRECT
        } else {
            xdp_action::XDP_ABORTED
        }
    }
}
