//! `vrrp_instance NAME { ... }`: the keyword table, then the settings whose
//! defaults depend on each other or on global_defs (state and priority,
//! version and advert_int, garp timings, accept, authentication).

use std::time::Duration;

use super::auth::authentication;
use super::lists::{track_interface, track_script, unicast_peer};
use super::{named_block, notify_handler};
use crate::config::diag::Sink;
use crate::config::ip;
use crate::config::keywords::{dispatch, kw, unsupported, Keyword};
use crate::config::model::{
    fmt_duration, AuthType, Authentication, GlobalDefs, Location, Notify, VrrpInstance, VrrpState,
};
use crate::config::tree::Stmt;
use crate::config::values::{
    bad_value, flag_arg, ip_arg, one_arg, secs_arg, string_arg, u32_arg, uint_arg, uint_word,
    warn_extra, MAX_TIMER,
};

/// Owner priority: the address owner, always master.
const PRIO_OWNER: u8 = 255;
const PRIO_DEFAULT: u8 = 100;

/// Settings whose default comes from global_defs or from other settings,
/// resolved once the block is read.
#[derive(Default)]
pub(super) struct InstBuild {
    inst: Option<VrrpInstance>,
    state: Option<VrrpState>,
    priority: Option<u8>,
    version: Option<u8>,
    advert_int: Option<(Duration, Location)>,
    garp_master_delay: Option<Duration>,
    garp_master_repeat: Option<u32>,
    garp_master_refresh: Option<Duration>,
    garp_master_refresh_repeat: Option<u32>,
    accept: Option<bool>,
    nopreempt: Option<Location>,
    pub(super) auth_type: Option<AuthType>,
    pub(super) auth_pass: Option<String>,
    pub(super) auth_loc: Option<Location>,
}

impl InstBuild {
    /// The instance being filled; always present while handlers run.
    pub(super) fn i(&mut self) -> &mut VrrpInstance {
        self.inst.get_or_insert_with(blank_instance)
    }
}

fn blank_instance() -> VrrpInstance {
    VrrpInstance {
        name: String::new(),
        state: VrrpState::Backup,
        interface: None,
        virtual_router_id: 0,
        priority: PRIO_DEFAULT,
        advert_int: Duration::from_secs(1),
        version: 2,
        preempt: true,
        preempt_delay: Duration::ZERO,
        authentication: None,
        virtual_ipaddress: Vec::new(),
        virtual_ipaddress_excluded: Vec::new(),
        virtual_routes: Vec::new(),
        track_interface: Vec::new(),
        track_script: Vec::new(),
        unicast_src_ip: None,
        unicast_peer: Vec::new(),
        mcast_src_ip: None,
        garp_master_delay: Duration::from_secs(5),
        garp_master_repeat: 5,
        garp_master_refresh: Duration::ZERO,
        garp_master_refresh_repeat: 1,
        notify: Notify::default(),
        smtp_alert: false,
        dont_track_primary: false,
        accept: true,
        debug: 0,
        location: Location::default(),
    }
}

/// keepalived does not start when `state`, `priority`, `advert_int`,
/// `auth_type` or `auth_pass` has no value (checked against 2.2.7): the
/// missing value is fatal, not skipped.
pub(super) fn bare_is_fatal(s: &mut Sink, st: &Stmt) -> bool {
    if st.arg(0).is_none() {
        s.fatal(st.loc(), format!("`{}` needs a value", st.keyword()));
        return true;
    }
    false
}

fn inst_notify(s: &mut Sink, st: &Stmt, b: &mut InstBuild) {
    notify_handler(|b: &mut InstBuild| &mut b.i().notify)(s, st, b)
}

static INSTANCE_KEYWORDS: &[Keyword<InstBuild>] = &[
    kw("state", |s, st, b| {
        if bare_is_fatal(s, st) {
            return;
        }
        let Some(w) = one_arg(s, st) else { return };
        match w.text.as_str() {
            "MASTER" => b.state = Some(VrrpState::Master),
            "BACKUP" => b.state = Some(VrrpState::Backup),
            // keepalived: "unknown state, defaulting to BACKUP".
            _ => {
                bad_value(s, st, w, "expected MASTER or BACKUP; BACKUP is used");
                b.state = Some(VrrpState::Backup);
            }
        }
    }),
    kw("interface", |s, st, b| b.i().interface = string_arg(s, st)),
    kw("virtual_router_id", |s, st, b| {
        if let Some(v) = uint_arg(s, st, 1, 255) {
            b.i().virtual_router_id = v as u8;
        }
    }),
    kw("priority", |s, st, b| {
        if bare_is_fatal(s, st) {
            return;
        }
        // keepalived: "Priority not valid! ... Using default 100", even
        // with `state MASTER` (which otherwise implies 255).
        b.priority = Some(uint_arg(s, st, 1, 255).map_or(PRIO_DEFAULT, |v| v as u8));
    }),
    kw("advert_int", |s, st, b| {
        if bare_is_fatal(s, st) {
            return;
        }
        // keepalived reads centiseconds at most: 0.01s to 255s.
        if let Some(d) = secs_arg(
            s,
            st,
            2,
            Duration::from_millis(10),
            Duration::from_secs(255),
        ) {
            b.advert_int = Some((d, st.loc().clone()));
        }
    }),
    kw("version", |s, st, b| {
        if let Some(v) = uint_arg(s, st, 2, 3) {
            b.version = Some(v as u8);
        }
    }),
    kw("nopreempt", |s, st, b| {
        warn_extra(s, st, 0);
        b.nopreempt = Some(st.loc().clone());
        b.i().preempt = false;
    }),
    kw("preempt", |s, st, b| {
        warn_extra(s, st, 0);
        b.nopreempt = None;
        b.i().preempt = true;
    }),
    kw("preempt_delay", |s, st, b| {
        if let Some(d) = secs_arg(s, st, 6, Duration::ZERO, Duration::from_secs(1000)) {
            b.i().preempt_delay = d;
        }
    }),
    kw("authentication", authentication),
    kw("virtual_ipaddress", |s, st, b| {
        let v = ip::address_block(s, st);
        b.i().virtual_ipaddress.extend(v);
    }),
    kw("virtual_ipaddress_excluded", |s, st, b| {
        let v = ip::address_block(s, st);
        b.i().virtual_ipaddress_excluded.extend(v);
    }),
    kw("virtual_routes", |s, st, b| {
        let v = ip::route_block(s, st);
        b.i().virtual_routes.extend(v);
    }),
    kw("track_interface", track_interface),
    kw("track_script", track_script),
    kw("unicast_src_ip", |s, st, b| {
        b.i().unicast_src_ip = ip_arg(s, st)
    }),
    kw("unicast_peer", unicast_peer),
    kw("mcast_src_ip", |s, st, b| {
        b.i().mcast_src_ip = ip_arg(s, st)
    }),
    kw("garp_master_delay", |s, st, b| {
        b.garp_master_delay = secs_arg(s, st, 0, Duration::ZERO, MAX_TIMER).or(b.garp_master_delay)
    }),
    kw("garp_master_repeat", |s, st, b| {
        b.garp_master_repeat = u32_arg(s, st, 1, u32::MAX).or(b.garp_master_repeat)
    }),
    kw("garp_master_refresh", |s, st, b| {
        b.garp_master_refresh =
            secs_arg(s, st, 0, Duration::ZERO, MAX_TIMER).or(b.garp_master_refresh)
    }),
    kw("garp_master_refresh_repeat", |s, st, b| {
        b.garp_master_refresh_repeat = u32_arg(s, st, 1, u32::MAX).or(b.garp_master_refresh_repeat)
    }),
    kw("notify_master", inst_notify),
    kw("notify_backup", inst_notify),
    kw("notify_fault", inst_notify),
    kw("notify_stop", inst_notify),
    kw("notify", inst_notify),
    kw("smtp_alert", |s, st, b| {
        if let Some(v) = flag_arg(s, st) {
            b.i().smtp_alert = v;
        }
    }),
    kw("dont_track_primary", |s, st, b| {
        warn_extra(s, st, 0);
        b.i().dont_track_primary = true;
    }),
    kw("accept", |s, st, b| {
        warn_extra(s, st, 0);
        b.accept = Some(true);
    }),
    kw("no_accept", |s, st, b| {
        warn_extra(s, st, 0);
        b.accept = Some(false);
    }),
    kw("debug", |s, st, b| {
        let level = match st.arg(0) {
            None => Some(1),
            Some(w) => {
                warn_extra(s, st, 1);
                uint_word(s, st, w, 0, 4)
            }
        };
        if let Some(l) = level {
            b.i().debug = l as u32;
        }
    }),
    unsupported("use_vmac"),
    unsupported("use_vmac_addr"),
    unsupported("vmac_xmit_base"),
    unsupported("use_ipvlan"),
    unsupported("unicast_fault_no_peer"),
    unsupported("check_unicast_src"),
    unsupported("old_unicast_checksum"),
    unsupported("native_ipv6"),
    unsupported("vrf"),
    unsupported("track_file"),
    unsupported("track_process"),
    unsupported("track_bfd"),
    unsupported("mcast_dst_ip"),
    unsupported("track_src_ip"),
    unsupported("unicast_ttl"),
    unsupported("no_virtual_ipaddress"),
    unsupported("promote_secondaries"),
    unsupported("linkbeat_use_polling"),
    unsupported("v3_checksum_as_v2"),
    unsupported("virtual_rules"),
    unsupported("skip_check_adv_addr"),
    unsupported("strict_mode"),
    unsupported("notify_deleted"),
    unsupported("notify_master_rx_lower_pri"),
    unsupported("notify_priority_changes"),
    unsupported("lvs_sync_daemon_interface"),
    unsupported("garp_lower_prio_delay"),
    unsupported("garp_lower_prio_repeat"),
    unsupported("down_timer_adverts"),
    unsupported("garp_extra_if"),
    unsupported("lower_prio_no_advert"),
    unsupported("higher_prio_send_advert"),
    unsupported("owner_ignore_adverts"),
    unsupported("kernel_rx_buf_size"),
    unsupported("auth_hmac"),
];

pub(crate) fn build_instance(sink: &mut Sink, st: &Stmt, g: &GlobalDefs) -> Option<VrrpInstance> {
    let name = named_block(sink, st)?;
    let mut b = InstBuild::default();
    b.i().name = name.clone();
    b.i().location = st.loc().clone();
    dispatch(
        sink,
        st.children(),
        INSTANCE_KEYWORDS,
        &mut b,
        "vrrp_instance",
    );
    let mut inst = b.inst.take().unwrap_or_else(blank_instance);

    // keepalived does not start without these two.
    if inst.virtual_router_id == 0 {
        sink.fatal(
            st.loc(),
            format!("vrrp_instance `{name}` needs a `virtual_router_id` (1 to 255)"),
        );
    }
    if inst.interface.is_none() {
        inst.interface = g.default_interface.clone();
    }
    if inst.interface.is_none() {
        sink.fatal(
            st.loc(),
            format!(
                "vrrp_instance `{name}` needs an `interface` (or global_defs `default_interface`)"
            ),
        );
    }

    // keepalived derives priority from state and state from priority when
    // only one is given.
    inst.state = b.state.unwrap_or(if b.priority == Some(PRIO_OWNER) {
        VrrpState::Master
    } else {
        VrrpState::Backup
    });
    inst.priority = b.priority.unwrap_or(if b.state == Some(VrrpState::Master) {
        PRIO_OWNER
    } else {
        PRIO_DEFAULT
    });

    // IPv6 addresses need VRRP version 3.
    let ipv6 = inst
        .virtual_ipaddress
        .first()
        .is_some_and(|a| a.addr.is_ipv6());
    inst.version = match b.version {
        Some(2) if ipv6 => {
            sink.error(
                st.loc(),
                format!("vrrp_instance `{name}`: VRRP version 2 cannot carry IPv6 addresses; version 3 is used"),
            );
            3
        }
        Some(v) => v,
        None if ipv6 => 3,
        None => g.vrrp_version,
    };

    if let Some((adv, loc)) = b.advert_int {
        inst.advert_int = adv;
        if inst.version == 2 && adv.subsec_nanos() != 0 {
            let rounded = Duration::from_secs(adv.as_secs_f64().round().max(1.0) as u64);
            sink.warn(
                &loc,
                format!(
                    "`advert_int` must be whole seconds with VRRP version 2: {} is rounded to {}",
                    fmt_duration(adv),
                    fmt_duration(rounded)
                ),
            );
            inst.advert_int = rounded;
        } else if inst.version == 3 && adv > Duration::from_millis(40950) {
            sink.warn(
                &loc,
                "`advert_int` above 40.95s is not possible with VRRP version 3: 40.95s is used",
            );
            inst.advert_int = Duration::from_millis(40950);
        }
    }

    inst.garp_master_delay = b.garp_master_delay.unwrap_or(g.vrrp_garp_master_delay);
    inst.garp_master_repeat = b.garp_master_repeat.unwrap_or(g.vrrp_garp_master_repeat);
    inst.garp_master_refresh = b.garp_master_refresh.unwrap_or(g.vrrp_garp_master_refresh);
    inst.garp_master_refresh_repeat = b
        .garp_master_refresh_repeat
        .unwrap_or(g.vrrp_garp_master_refresh_repeat);
    inst.accept = b
        .accept
        .unwrap_or(inst.priority == PRIO_OWNER || !g.vrrp_strict);

    if let Some(loc) = &b.nopreempt {
        if inst.state == VrrpState::Master {
            sink.warn(
                loc,
                format!("`nopreempt` has no effect with `state MASTER` (vrrp_instance `{name}`): use `state BACKUP` on every node"),
            );
        } else if inst.priority == PRIO_OWNER {
            sink.warn(
                loc,
                format!("`nopreempt` has no effect with priority 255 (vrrp_instance `{name}`)"),
            );
        }
    }

    if let Some(loc) = &b.auth_loc {
        match (b.auth_type, b.auth_pass.take()) {
            (Some(auth_type), Some(auth_pass)) => {
                if inst.version == 3 {
                    sink.warn(
                        loc,
                        "VRRP version 3 has no authentication: `authentication` is ignored",
                    );
                } else if g.vrrp_strict {
                    sink.warn(
                        loc,
                        "`vrrp_strict` forbids authentication: `authentication` is ignored",
                    );
                } else {
                    inst.authentication = Some(Authentication {
                        auth_type,
                        auth_pass,
                    });
                }
            }
            // keepalived runs such an instance without authentication.
            (None, _) => sink.error(
                loc,
                "`authentication` needs an `auth_type` (PASS or AH): authentication is ignored",
            ),
            (_, None) => sink.error(
                loc,
                "`authentication` needs an `auth_pass`: authentication is ignored",
            ),
        }
    }
    Some(inst)
}
