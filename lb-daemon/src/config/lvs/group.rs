//! `virtual_server_group NAME { IP PORT | IP-RANGE PORT | fwmark N ... }`.

use std::net::IpAddr;

use super::{fwmark, socket_addr};
use crate::config::diag::Sink;
use crate::config::model::{VirtualServerGroup, VsgEntry};
use crate::config::tree::{Stmt, Word};
use crate::config::values::{one_arg, parse_u64, port_word, warn_extra};

/// `virtual_server_group NAME { IP PORT | IP-RANGE PORT | fwmark N ... }`.
pub(crate) fn build_vsg(sink: &mut Sink, st: &Stmt) -> Option<VirtualServerGroup> {
    let name = one_arg(sink, st).map(|w| w.text.clone());
    if st.block.is_none() {
        sink.error(st.loc(), "`virtual_server_group` needs a `{ ... }` block");
        return None;
    }
    let mut entries = Vec::new();
    for line in st.children() {
        if line.block.is_some() {
            sink.error(line.loc(), "unexpected block in `virtual_server_group`");
            continue;
        }
        if let Some(e) = vsg_entry(sink, line) {
            entries.push(e);
        }
    }
    Some(VirtualServerGroup {
        name: name?,
        entries,
        location: st.loc().clone(),
    })
}

fn vsg_entry(sink: &mut Sink, line: &Stmt) -> Option<VsgEntry> {
    let first = &line.words[0];
    if first.text == "fwmark" {
        warn_extra(sink, line, 1);
        return fwmark(sink, first, line.arg(0)).map(VsgEntry::Fwmark);
    }
    warn_extra(sink, line, 1);
    if let Some((start, end)) = first.text.split_once('-') {
        let port = match line.arg(0) {
            Some(p) => port_word(sink, "virtual server group port", p)?,
            None => 0,
        };
        return ip_range(sink, first, start, end).map(|(first, last)| VsgEntry::Range {
            first,
            last,
            port,
        });
    }
    socket_addr(sink, "virtual server group", first, line.arg(0)).map(VsgEntry::Addr)
}

/// `10.0.0.1-10` (last IPv4 byte) or `2001:db8::1-ff` (last IPv6 group, in
/// hex), as keepalived writes address ranges.
fn ip_range(sink: &mut Sink, w: &Word, start: &str, end: &str) -> Option<(IpAddr, IpAddr)> {
    let bad = |sink: &mut Sink, why: &str| {
        sink.error(&w.loc, format!("invalid address range `{}`: {why}", w.text));
    };
    let Ok(first) = start.parse::<IpAddr>() else {
        bad(sink, "expected ADDRESS-LAST, such as 10.0.0.1-10");
        return None;
    };
    match first {
        IpAddr::V4(a) => {
            let o = a.octets();
            match parse_u64(end) {
                Some(e) if e >= u64::from(o[3]) && e <= 255 => {
                    let last = std::net::Ipv4Addr::new(o[0], o[1], o[2], e as u8);
                    Some((first, IpAddr::V4(last)))
                }
                _ => {
                    bad(sink, &format!("the last byte must be from {} to 255", o[3]));
                    None
                }
            }
        }
        IpAddr::V6(a) => {
            let mut seg = a.segments();
            match u16::from_str_radix(end, 16) {
                Ok(e) if e >= seg[7] && !end.is_empty() && end.len() <= 4 => {
                    seg[7] = e;
                    Some((first, IpAddr::V6(seg.into())))
                }
                _ => {
                    bad(
                        sink,
                        &format!("the last group must be hex from {:x} to ffff", seg[7]),
                    );
                    None
                }
            }
        }
    }
}
