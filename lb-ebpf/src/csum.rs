//! Internet checksums, updated incrementally (RFC 1624) so a rewrite costs a
//! few instructions whatever the packet's size.
//!
//! The one's-complement sum does not depend on byte order, so the values are
//! used exactly as loaded from the packet (network order read natively).

#[inline(always)]
fn fold(mut s: u32) -> u16 {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// The checksum after a 16-bit field changed from `old` to `new`.
#[inline(always)]
pub fn replace2(check: u16, old: u16, new: u16) -> u16 {
    !fold(u32::from(!check) + u32::from(!old) + u32::from(new))
}

/// The checksum after a 32-bit field changed from `old` to `new`.
#[inline(always)]
pub fn replace4(check: u16, old: u32, new: u32) -> u16 {
    let c = replace2(check, old as u16, new as u16);
    replace2(c, (old >> 16) as u16, (new >> 16) as u16)
}

/// The checksum after an address (1 or 4 words) changed.
#[inline(always)]
pub fn replace_addr(mut check: u16, old: &[u32; 4], new: &[u32; 4], v6: bool) -> u16 {
    check = replace4(check, old[0], new[0]);
    if v6 {
        check = replace4(check, old[1], new[1]);
        check = replace4(check, old[2], new[2]);
        check = replace4(check, old[3], new[3]);
    }
    check
}

/// Checksum of an IPv4 header without options (its check field zero).
#[inline(always)]
pub fn ipv4_header(words: &[u16; 10]) -> u16 {
    let mut s = 0u32;
    let mut i = 0;
    while i < 10 {
        s += u32::from(words[i]);
        i += 1;
    }
    !fold(s)
}
