//! `global_defs { ... }`.

use std::time::Duration;

use super::diag::Sink;
use super::keywords::{dispatch, kw, unsupported, Keyword};
use super::model::{DataplaneTier, GlobalDefs, LvsSyncDaemon, SmtpServer};
use super::tree::Stmt;
use super::values::{
    flag_arg, one_arg, parse_u64, secs_arg, string_arg, u32_arg, uint_arg, uint_word, user_arg,
    MAX_TIMER,
};

static KEYWORDS: &[Keyword<GlobalDefs>] = &[
    kw("router_id", |s, st, g| g.router_id = string_arg(s, st)),
    kw("notification_email", notification_email),
    kw("notification_email_from", |s, st, g| {
        g.notification_email_from = string_arg(s, st)
    }),
    kw("smtp_server", smtp_server),
    kw("lvs_timeouts", lvs_timeouts),
    kw("lvs_sync_daemon", lvs_sync_daemon),
    kw("lb_dataplane", |s, st, g| {
        let Some(w) = st.arg(0) else {
            super::values::one_arg(s, st);
            return;
        };
        super::values::warn_extra(s, st, 1);
        g.lb_dataplane = match w.text.as_str() {
            "auto" => Some(DataplaneTier::Auto),
            "xdp" => Some(DataplaneTier::Xdp),
            "tc" => Some(DataplaneTier::Tc),
            "ipvs" => Some(DataplaneTier::Ipvs),
            _ => {
                super::values::bad_value(s, st, w, "expected auto, xdp, tc or ipvs");
                return;
            }
        };
    }),
    kw("lb_announce_table", |s, st, g| {
        let Some(w) = st.arg(0) else {
            super::values::one_arg(s, st);
            return;
        };
        if let Some(t) = u32_arg(s, st, 1, u32::MAX) {
            // 253-255 are the kernel's default, main and local tables: a
            // routing daemon exporting them would announce everything.
            if (253..=255).contains(&t) {
                super::values::bad_value(
                    s,
                    st,
                    w,
                    "expected a table of its own (1-252 or above 255; not default, main or local)",
                );
                return;
            }
            g.lb_announce.table = Some(t);
        }
    }),
    kw("lb_announce_warmup", |s, st, g| {
        if let Some(d) = secs_arg(s, st, 3, Duration::ZERO, MAX_TIMER) {
            g.lb_announce.warmup = d;
        }
    }),
    kw("lb_announce_drain", |s, st, g| {
        if let Some(d) = secs_arg(s, st, 3, Duration::ZERO, MAX_TIMER) {
            g.lb_announce.drain = d;
        }
    }),
    kw("smtp_helo_name", |s, st, g| {
        g.smtp_helo_name = string_arg(s, st)
    }),
    kw("smtp_connect_timeout", |s, st, g| {
        if let Some(d) = secs_arg(s, st, 0, Duration::from_secs(1), MAX_TIMER) {
            g.smtp_connect_timeout = d;
        }
    }),
    kw("vrrp_version", |s, st, g| {
        if let Some(v) = uint_arg(s, st, 2, 3) {
            g.vrrp_version = v as u8;
        }
    }),
    kw("vrrp_garp_master_delay", |s, st, g| {
        if let Some(d) = secs_arg(s, st, 0, Duration::ZERO, MAX_TIMER) {
            g.vrrp_garp_master_delay = d;
        }
    }),
    kw("vrrp_garp_master_repeat", |s, st, g| {
        if let Some(v) = u32_arg(s, st, 1, u32::MAX) {
            g.vrrp_garp_master_repeat = v;
        }
    }),
    kw("vrrp_garp_master_refresh", |s, st, g| {
        if let Some(d) = secs_arg(s, st, 0, Duration::ZERO, MAX_TIMER) {
            g.vrrp_garp_master_refresh = d;
        }
    }),
    kw("vrrp_garp_master_refresh_repeat", |s, st, g| {
        if let Some(v) = u32_arg(s, st, 1, u32::MAX) {
            g.vrrp_garp_master_refresh_repeat = v;
        }
    }),
    kw("vrrp_garp_interval", |s, st, g| {
        if let Some(d) = secs_arg(s, st, 6, Duration::ZERO, MAX_TIMER) {
            g.vrrp_garp_interval = d;
        }
    }),
    kw("vrrp_gna_interval", |s, st, g| {
        if let Some(d) = secs_arg(s, st, 6, Duration::ZERO, MAX_TIMER) {
            g.vrrp_gna_interval = d;
        }
    }),
    kw("vrrp_strict", |s, st, g| {
        if let Some(v) = flag_arg(s, st) {
            g.vrrp_strict = v;
        }
    }),
    kw("vrrp_startup_delay", |s, st, g| {
        if let Some(d) = secs_arg(s, st, 6, Duration::ZERO, MAX_TIMER) {
            g.vrrp_startup_delay = d;
        }
    }),
    kw("enable_script_security", |s, st, g| {
        if let Some(v) = flag_arg(s, st) {
            g.enable_script_security = v;
        }
    }),
    kw("script_user", |s, st, g| g.script_user = user_arg(s, st)),
    kw("default_interface", |s, st, g| {
        g.default_interface = string_arg(s, st)
    }),
    unsupported("smtp_alert"),
    unsupported("smtp_alert_vrrp"),
    unsupported("smtp_alert_checker"),
    unsupported("no_email_faults"),
    unsupported("checker_log_all_failures"),
    unsupported("dynamic_interfaces"),
    unsupported("lvs_flush"),
    unsupported("lvs_flush_on_stop"),
    unsupported("vrrp_mcast_group4"),
    unsupported("vrrp_mcast_group6"),
    unsupported("vrrp_garp_lower_prio_delay"),
    unsupported("vrrp_garp_lower_prio_repeat"),
    unsupported("vrrp_lower_prio_no_advert"),
    unsupported("vrrp_higher_prio_send_advert"),
    unsupported("vrrp_iptables"),
    unsupported("vrrp_ipsets"),
    unsupported("nftables"),
    unsupported("vrrp_check_unicast_src"),
    unsupported("vrrp_skip_check_adv_addr"),
    unsupported("vrrp_priority"),
    unsupported("vrrp_no_swap"),
    unsupported("vrrp_rt_priority"),
    unsupported("checker_priority"),
    unsupported("checker_no_swap"),
    unsupported("checker_rt_priority"),
    kw("notify_fifo", |s, st, g| g.notify_fifo = fifo_arg(s, st)),
    unsupported("notify_fifo_script"),
    kw("vrrp_notify_fifo", |s, st, g| {
        g.vrrp_notify_fifo = fifo_arg(s, st)
    }),
    unsupported("vrrp_notify_fifo_script"),
    unsupported("lvs_notify_fifo"),
    unsupported("lvs_notify_fifo_script"),
    unsupported("process_names"),
    unsupported("process_name"),
    unsupported("vrrp_process_name"),
    unsupported("checker_process_name"),
    unsupported("enable_traps"),
    unsupported("enable_snmp_vrrp"),
    unsupported("enable_snmp_checker"),
    unsupported("enable_snmp_rfc"),
    unsupported("enable_dbus"),
    unsupported("max_auto_priority"),
    unsupported("startup_script"),
    unsupported("shutdown_script"),
    unsupported("umask"),
];

pub(crate) fn build(sink: &mut Sink, st: &Stmt, g: &mut GlobalDefs) {
    if st.block.is_none() {
        sink.error(st.loc(), "`global_defs` needs a `{ ... }` block");
        return;
    }
    super::values::warn_extra(sink, st, 0);
    g.location = st.loc().clone();
    dispatch(sink, st.children(), KEYWORDS, g, "global_defs");
    mail_warning(sink, st.children());
}

/// Keywords about e-mail alerts.
const MAIL_KEYWORDS: [&str; 5] = [
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_helo_name",
    "smtp_connect_timeout",
];

/// This project sends no mail: the settings are kept (for `lbctl` and a
/// future notifier) but the operator must know alerts will not go out. One
/// warning, at the first mail setting, is enough.
fn mail_warning(sink: &mut Sink, stmts: &[Stmt]) {
    if let Some(st) = stmts
        .iter()
        .find(|st| MAIL_KEYWORDS.contains(&st.keyword()))
    {
        sink.warn(
            st.loc(),
            "e-mail settings are kept but no e-mail is sent: mail notification is not implemented",
        );
    }
}

/// `notification_email { ADDR... }`: one address per line (several on a
/// line are accepted too).
fn notification_email(sink: &mut Sink, st: &Stmt, g: &mut GlobalDefs) {
    if st.block.is_none() {
        sink.error(
            st.loc(),
            "`notification_email` needs a `{ ... }` block of addresses",
        );
        return;
    }
    for line in st.children() {
        if line.block.is_some() {
            sink.error(line.loc(), "unexpected block in `notification_email`");
        }
        g.notification_email
            .extend(line.words.iter().map(|w| w.text.clone()));
    }
}

/// `smtp_server HOST [PORT]`.
fn smtp_server(sink: &mut Sink, st: &Stmt, g: &mut GlobalDefs) {
    let Some(host) = st.arg(0) else {
        one_arg(sink, st);
        return;
    };
    super::values::warn_extra(sink, st, 2);
    let port = match st.arg(1) {
        None => 25,
        Some(w) => match parse_u64(&w.text).and_then(|p| u16::try_from(p).ok()) {
            Some(p) if p > 0 => p,
            _ => {
                super::values::bad_value(sink, st, w, "expected a port from 1 to 65535");
                return;
            }
        },
    };
    g.smtp_server = Some(SmtpServer {
        host: host.text.clone(),
        port,
    });
}

/// `lvs_timeouts [tcp N] [tcpfin N] [udp N]`, any order, seconds.
fn lvs_timeouts(sink: &mut Sink, st: &Stmt, g: &mut GlobalDefs) {
    let args = st.args();
    if args.is_empty() {
        sink.error(
            st.loc(),
            "`lvs_timeouts` needs at least one of `tcp N`, `tcpfin N`, `udp N`",
        );
        return;
    }
    let mut i = 0;
    while i < args.len() {
        let key = &args[i];
        let slot = match key.text.as_str() {
            "tcp" => &mut g.lvs_timeouts.tcp,
            "tcpfin" => &mut g.lvs_timeouts.tcpfin,
            "udp" => &mut g.lvs_timeouts.udp,
            _ => {
                super::values::bad_value(sink, st, key, "expected `tcp`, `tcpfin` or `udp`");
                return;
            }
        };
        let Some(v) = args.get(i + 1) else {
            sink.error(
                &key.loc,
                format!("`lvs_timeouts {}` needs a number of seconds", key.text),
            );
            return;
        };
        match parse_u64(&v.text).and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n > 0 => *slot = Some(n),
            _ => {
                super::values::bad_value(sink, st, v, "expected seconds, at least 1");
                return;
            }
        }
        i += 2;
    }
}

/// Longest interface name (`IFNAMSIZ` less the NUL), as the kernel's and
/// keepalived's check.
const IFNAME_MAX: usize = 15;

/// `lvs_sync_daemon INTERFACE [VRRP_INSTANCE | inst NAME] [id N] [maxlen N]
/// [port N] [ttl N] [group ADDR]`, options in any order as in keepalived
/// (which also reads a bare fourth word as the sync id, the old syntax).
/// That the instance exists is checked once everything is read.
fn lvs_sync_daemon(sink: &mut Sink, st: &Stmt, g: &mut GlobalDefs) {
    if let Some(first) = &g.lvs_sync_daemon {
        sink.error(
            st.loc(),
            format!("`lvs_sync_daemon` is already given at {}", first.location),
        );
        return;
    }
    let args = st.args();
    let Some(ifname) = args.first() else {
        sink.error(st.loc(), "`lvs_sync_daemon` needs an interface");
        return;
    };
    if ifname.text.len() > IFNAME_MAX {
        super::values::bad_value(sink, st, ifname, "an interface name is at most 15 bytes");
        return;
    }
    let mut d = LvsSyncDaemon::new(ifname.text.clone(), st.loc().clone());
    let mut i = 1;
    while i < args.len() {
        let key = &args[i];
        let option = matches!(
            key.text.as_str(),
            "inst" | "id" | "maxlen" | "port" | "ttl" | "group"
        );
        if !option {
            if i == 1 {
                d.vrrp_instance = Some(key.text.clone());
            } else if i == 2 && d.vrrp_instance.is_some() {
                // The old positional sync id.
                let Some(v) = uint_word(sink, st, key, 0, 255) else {
                    return;
                };
                d.syncid = Some(v as u8);
                sink.warn(
                    &key.loc,
                    "write the sync id as `id N`: the bare form is kept for old configurations",
                );
            } else {
                super::values::bad_value(
                    sink,
                    st,
                    key,
                    "expected `inst`, `id`, `maxlen`, `port`, `ttl` or `group`",
                );
                return;
            }
            i += 1;
            continue;
        }
        let Some(v) = args.get(i + 1) else {
            sink.error(
                &key.loc,
                format!("`lvs_sync_daemon {}` needs a value", key.text),
            );
            return;
        };
        match key.text.as_str() {
            "inst" => d.vrrp_instance = Some(v.text.clone()),
            "id" => match uint_word(sink, st, v, 0, 255) {
                Some(n) => d.syncid = Some(n as u8),
                None => return,
            },
            // The largest UDP payload in an IPv4 datagram.
            "maxlen" => match uint_word(sink, st, v, 1, 65535 - 20 - 8) {
                Some(n) => d.maxlen = Some(n as u16),
                None => return,
            },
            "port" => match uint_word(sink, st, v, 1, 65535) {
                Some(n) => d.port = n as u16,
                None => return,
            },
            "ttl" => match uint_word(sink, st, v, 1, 255) {
                Some(n) => d.ttl = n as u8,
                None => return,
            },
            _ => match v.text.parse::<std::net::IpAddr>() {
                Ok(a) if a.is_multicast() => d.group = a,
                _ => {
                    super::values::bad_value(sink, st, v, "expected a multicast address");
                    return;
                }
            },
        }
        i += 2;
    }
    g.lvs_sync_daemon = Some(d);
}

/// `notify_fifo PATH [USER [GROUP]]`: the FIFO's path. The owner words are
/// keepalived's for a FIFO it creates; lbd creates it as its own user.
fn fifo_arg(sink: &mut Sink, st: &Stmt) -> Option<std::path::PathBuf> {
    let Some(path) = st.arg(0) else {
        sink.error(st.loc(), format!("`{}` needs a FIFO path", st.keyword()));
        return None;
    };
    if let Some(owner) = st.arg(1) {
        sink.warn(
            &owner.loc,
            "the FIFO's owner is not applied: lbd creates it as its own user",
        );
    }
    Some(std::path::PathBuf::from(&path.text))
}
