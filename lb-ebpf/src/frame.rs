//! Bounds-checked access to the frame: the one place that turns packet
//! addresses into references, so header and field code needs no `unsafe`.
//!
//! The rules the accessors rely on, which the code keeps by review:
//! - a reference obtained here is used before the next `Net::push_head`
//!   (which moves the frame) and is derived again after it;
//! - no two live references cover the same bytes while one of them is
//!   mutable (the headers a function holds at once are disjoint: outer and
//!   quoted IP headers, checksum and ports, ...).

use crate::ctx::Net;
use crate::headers::{EthHdr, IcmpHdr, Ipv4Hdr, Ipv6Hdr, TcpHdr, UdpHdr, VlanHdr};

/// Plain wire data: what a frame may be read as.
///
/// # Safety
/// Implementors are `repr(C)` integers, or structs or arrays of them,
/// without padding: every bit pattern is a valid value.
pub unsafe trait Wire {}

// SAFETY: each of these is a `repr(C)` struct of integers and integer
// arrays, laid out without padding (see `headers`), or an integer array.
unsafe impl Wire for EthHdr {}
// SAFETY: as above.
unsafe impl Wire for VlanHdr {}
// SAFETY: as above.
unsafe impl Wire for Ipv4Hdr {}
// SAFETY: as above.
unsafe impl Wire for Ipv6Hdr {}
// SAFETY: as above.
unsafe impl Wire for TcpHdr {}
// SAFETY: as above.
unsafe impl Wire for UdpHdr {}
// SAFETY: as above.
unsafe impl Wire for IcmpHdr {}
// SAFETY: an integer.
unsafe impl Wire for u16 {}
// SAFETY: an integer array (two ports).
unsafe impl Wire for [u16; 2] {}
// SAFETY: an integer array (an IPv4 header without options, as words).
unsafe impl Wire for [u16; 10] {}

/// Pointer to a `T` at `offset` into the frame, if the frame holds all of it.
#[inline(always)]
fn ptr_at<T: Wire, C: Net>(ctx: &C, offset: usize) -> Result<*mut T, ()> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return Err(());
    }
    Ok((start + offset) as *mut T)
}

/// The `T` at `offset` into the frame, if the frame holds all of it.
#[inline(always)]
pub fn at<T: Wire, C: Net>(ctx: &C, offset: usize) -> Result<&T, ()> {
    let p = ptr_at::<T, C>(ctx, offset)?;
    // SAFETY: `ptr_at` checked that the frame holds `size_of::<T>()` bytes
    // there (and the verifier checks it again); `T: Wire` is valid for any
    // bytes. The BPF machine loads at any offset the verifier accepts, as
    // the C programs this mirrors do. Aliasing: the module's rules.
    Ok(unsafe { &*p })
}

/// The `T` at `offset` into the frame, writable, if the frame holds all of
/// it. Packet data is writable in XDP and, for what `lb_tc` pulled into the
/// linear part, in TC.
#[inline(always)]
#[allow(clippy::mut_from_ref)]
pub fn at_mut<T: Wire, C: Net>(ctx: &C, offset: usize) -> Result<&mut T, ()> {
    let p = ptr_at::<T, C>(ctx, offset)?;
    // SAFETY: as in `at`; the module's rules keep this the only live
    // reference to these bytes.
    Ok(unsafe { &mut *p })
}
