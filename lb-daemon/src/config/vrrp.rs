//! `vrrp_instance`, `vrrp_script` and `vrrp_sync_group`.

use std::time::Duration;

use super::diag::Sink;
use super::keywords::{dispatch, kw, unsupported, Keyword};
use super::model::{
    AuthType, Authentication, GlobalDefs, Location, Notify, TrackInterface, TrackScript,
    UnicastPeer, VrrpInstance, VrrpScript, VrrpState, VrrpSyncGroup,
};
use super::net;
use super::tree::{Stmt, Word};
use super::values::{
    bad_value, flag_arg, int_word, ip_arg, one_arg, script_arg, secs_arg, string_arg, u32_arg,
    uint_arg, uint_word, user_arg, warn_extra, MAX_TIMER,
};

/// keepalived's VRRP_AUTH_LEN: longer passwords are truncated.
pub(crate) const AUTH_PASS_MAX: usize = 8;
/// Owner priority: the address owner, always master.
const PRIO_OWNER: u8 = 255;
const PRIO_DEFAULT: u8 = 100;
/// Tracking weights keepalived accepts.
const WEIGHT_MIN: i64 = -253;
const WEIGHT_MAX: i64 = 253;

// ---------------------------------------------------------------- vrrp_script

static SCRIPT_KEYWORDS: &[Keyword<VrrpScript>] = &[
    kw("script", |s, st, v| {
        if let Some(c) = script_arg(s, st) {
            v.script = c;
        }
    }),
    kw("interval", |s, st, v| {
        if let Some(d) = secs_arg(s, st, 3, Duration::from_millis(1), MAX_TIMER) {
            v.interval = d;
        }
    }),
    kw("timeout", |s, st, v| {
        if let Some(d) = secs_arg(s, st, 3, Duration::from_millis(1), MAX_TIMER) {
            v.timeout = d;
        }
    }),
    kw("weight", |s, st, v| {
        if let Some((w, rev)) = weight_words(s, st, st.args()) {
            v.weight = w;
            v.weight_reverse = rev;
        }
    }),
    kw("rise", |s, st, v| {
        v.rise = u32_arg(s, st, 1, i32::MAX as u32).unwrap_or(v.rise)
    }),
    kw("fall", |s, st, v| {
        v.fall = u32_arg(s, st, 1, i32::MAX as u32).unwrap_or(v.fall)
    }),
    kw("user", |s, st, v| v.user = user_arg(s, st)),
    kw("init_fail", |s, st, v| {
        warn_extra(s, st, 0);
        v.init_fail = true;
    }),
];

pub(crate) fn build_script(sink: &mut Sink, st: &Stmt) -> Option<VrrpScript> {
    let name = named_block(sink, st)?;
    let mut v = VrrpScript {
        name,
        script: String::new(),
        interval: Duration::from_secs(1),
        timeout: Duration::ZERO,
        weight: 0,
        weight_reverse: false,
        rise: 1,
        fall: 1,
        user: None,
        init_fail: false,
        location: st.loc().clone(),
    };
    dispatch(sink, st.children(), SCRIPT_KEYWORDS, &mut v, "vrrp_script");
    if v.script.is_empty() {
        sink.error(
            st.loc(),
            format!("vrrp_script `{}` has no `script` to run", v.name),
        );
        return None;
    }
    // keepalived waits one interval when no timeout is given.
    if v.timeout.is_zero() {
        v.timeout = v.interval;
    }
    Some(v)
}

/// `NAME { ... }` headers: the name, with a block required.
fn named_block(sink: &mut Sink, st: &Stmt) -> Option<String> {
    let name = match st.arg(0) {
        Some(w) => {
            warn_extra(sink, st, 1);
            Some(w.text.clone())
        }
        None => {
            sink.error(st.loc(), format!("`{}` needs a name", st.keyword()));
            None
        }
    };
    if st.block.is_none() {
        sink.error(
            st.loc(),
            format!("`{}` needs a `{{ ... }}` block", st.keyword()),
        );
        return None;
    }
    name
}

/// `weight W [reverse]` from `words` (the words after `weight`).
fn weight_words(sink: &mut Sink, st: &Stmt, words: &[Word]) -> Option<(i32, bool)> {
    let Some(w) = words.first() else {
        sink.error(st.loc(), "`weight` needs a value");
        return None;
    };
    let weight = int_word(sink, st, w, WEIGHT_MIN, WEIGHT_MAX)? as i32;
    let reverse = match words.get(1) {
        None => false,
        Some(r) if r.text == "reverse" => true,
        Some(r) => {
            sink.error(
                &r.loc,
                format!(
                    "unexpected `{}` after the weight: only `reverse` may follow",
                    r.text
                ),
            );
            false
        }
    };
    if let Some(extra) = words.get(2) {
        sink.warn(
            &extra.loc,
            format!("unexpected `{}`: extra values are ignored", extra.text),
        );
    }
    Some((weight, reverse))
}

// ---------------------------------------------------------------- sync group

fn notify_handler<T>(get: fn(&mut T) -> &mut Notify) -> impl Fn(&mut Sink, &Stmt, &mut T) {
    move |s, st, t| {
        let v = script_arg(s, st);
        let n = get(t);
        let slot = match st.keyword() {
            "notify_master" => &mut n.master,
            "notify_backup" => &mut n.backup,
            "notify_fault" => &mut n.fault,
            "notify_stop" => &mut n.stop,
            _ => &mut n.notify,
        };
        if v.is_some() {
            *slot = v;
        }
    }
}

fn group_notify(s: &mut Sink, st: &Stmt, g: &mut VrrpSyncGroup) {
    notify_handler(|g: &mut VrrpSyncGroup| &mut g.notify)(s, st, g)
}

static SYNC_GROUP_KEYWORDS: &[Keyword<VrrpSyncGroup>] = &[
    kw("group", |s, st, g| {
        if st.block.is_none() {
            s.error(
                st.loc(),
                "`group` needs a `{ ... }` block of vrrp_instance names",
            );
            return;
        }
        for line in st.children() {
            g.group.extend(line.words.iter().map(|w| w.text.clone()));
        }
    }),
    kw("notify_master", group_notify),
    kw("notify_backup", group_notify),
    kw("notify_fault", group_notify),
    kw("notify_stop", group_notify),
    kw("notify", group_notify),
    kw("smtp_alert", |s, st, g| {
        g.smtp_alert = flag_arg(s, st).unwrap_or(g.smtp_alert)
    }),
    unsupported("track_interface"),
    unsupported("track_script"),
    unsupported("track_file"),
    unsupported("track_process"),
    unsupported("track_bfd"),
    unsupported("global_tracking"),
    unsupported("sync_group_tracking_weight"),
    unsupported("notify_priority_changes"),
];

pub(crate) fn build_sync_group(sink: &mut Sink, st: &Stmt) -> Option<VrrpSyncGroup> {
    let name = named_block(sink, st)?;
    let mut g = VrrpSyncGroup {
        name,
        group: Vec::new(),
        notify: Notify::default(),
        smtp_alert: false,
        location: st.loc().clone(),
    };
    dispatch(
        sink,
        st.children(),
        SYNC_GROUP_KEYWORDS,
        &mut g,
        "vrrp_sync_group",
    );
    if g.group.is_empty() {
        sink.error(
            st.loc(),
            format!(
                "vrrp_sync_group `{}` has no `group {{ ... }}` of instances",
                g.name
            ),
        );
        return None;
    }
    Some(g)
}

// ---------------------------------------------------------------- instance

/// Settings whose default comes from global_defs or from other settings,
/// resolved once the block is read.
#[derive(Default)]
struct InstBuild {
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
    auth_type: Option<AuthType>,
    auth_pass: Option<String>,
    auth_loc: Option<Location>,
}

impl InstBuild {
    /// The instance being filled; always present while handlers run.
    fn i(&mut self) -> &mut VrrpInstance {
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

fn inst_notify(s: &mut Sink, st: &Stmt, b: &mut InstBuild) {
    notify_handler(|b: &mut InstBuild| &mut b.i().notify)(s, st, b)
}

static INSTANCE_KEYWORDS: &[Keyword<InstBuild>] = &[
    kw("state", |s, st, b| {
        let Some(w) = one_arg(s, st) else { return };
        match w.text.as_str() {
            "MASTER" => b.state = Some(VrrpState::Master),
            "BACKUP" => b.state = Some(VrrpState::Backup),
            _ => bad_value(s, st, w, "expected MASTER or BACKUP"),
        }
    }),
    kw("interface", |s, st, b| b.i().interface = string_arg(s, st)),
    kw("virtual_router_id", |s, st, b| {
        if let Some(v) = uint_arg(s, st, 1, 255) {
            b.i().virtual_router_id = v as u8;
        }
    }),
    kw("priority", |s, st, b| {
        if let Some(v) = uint_arg(s, st, 1, 255) {
            b.priority = Some(v as u8);
        }
    }),
    kw("advert_int", |s, st, b| {
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
        let v = net::address_block(s, st);
        b.i().virtual_ipaddress.extend(v);
    }),
    kw("virtual_ipaddress_excluded", |s, st, b| {
        let v = net::address_block(s, st);
        b.i().virtual_ipaddress_excluded.extend(v);
    }),
    kw("virtual_routes", |s, st, b| {
        let v = net::route_block(s, st);
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

#[derive(Default)]
struct AuthBuild {
    auth_type: Option<AuthType>,
    auth_pass: Option<String>,
}

static AUTH_KEYWORDS: &[Keyword<AuthBuild>] = &[
    kw("auth_type", |s, st, a| {
        let Some(w) = one_arg(s, st) else { return };
        match w.text.as_str() {
            "PASS" => a.auth_type = Some(AuthType::Pass),
            "AH" => a.auth_type = Some(AuthType::Ah),
            _ => bad_value(s, st, w, "expected PASS or AH"),
        }
    }),
    kw("auth_pass", |s, st, a| {
        let Some(w) = one_arg(s, st) else { return };
        let mut pass = w.text.clone();
        if pass.len() > AUTH_PASS_MAX {
            s.warn(
                &w.loc,
                format!(
                    "`auth_pass` is longer than {AUTH_PASS_MAX} characters: only `{}` is used, as keepalived truncates it",
                    truncate_bytes(&pass, AUTH_PASS_MAX)
                ),
            );
            pass = truncate_bytes(&pass, AUTH_PASS_MAX).to_string();
        }
        a.auth_pass = Some(pass);
    }),
];

/// The longest prefix of `s` of at most `n` bytes ending on a char boundary.
fn truncate_bytes(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn authentication(sink: &mut Sink, st: &Stmt, b: &mut InstBuild) {
    if st.block.is_none() {
        sink.error(
            st.loc(),
            "`authentication` needs a `{ auth_type ... auth_pass ... }` block",
        );
        return;
    }
    let mut a = AuthBuild::default();
    dispatch(sink, st.children(), AUTH_KEYWORDS, &mut a, "authentication");
    b.auth_type = a.auth_type.or(b.auth_type);
    b.auth_pass = a.auth_pass.or(b.auth_pass.take());
    b.auth_loc = Some(st.loc().clone());
}

/// `track_interface { IF [weight W [reverse]] ... }`.
fn track_interface(sink: &mut Sink, st: &Stmt, b: &mut InstBuild) {
    for line in block_lines(sink, st) {
        let name = line.words[0].text.clone();
        let (weight, reverse) = line_weight(sink, line);
        b.i().track_interface.push(TrackInterface {
            name,
            weight,
            reverse,
        });
    }
}

/// `track_script { NAME [weight W [reverse]] ... }`.
fn track_script(sink: &mut Sink, st: &Stmt, b: &mut InstBuild) {
    for line in block_lines(sink, st) {
        let name = line.words[0].text.clone();
        let (weight, reverse) = line_weight(sink, line);
        b.i().track_script.push(TrackScript {
            name,
            weight,
            reverse,
            location: line.loc().clone(),
        });
    }
}

/// The optional `weight W [reverse]` after a tracked object's name.
fn line_weight(sink: &mut Sink, line: &Stmt) -> (Option<i32>, bool) {
    match line.arg(0) {
        None => (None, false),
        Some(w) if w.text == "weight" => match weight_words(sink, line, &line.words[2..]) {
            Some((w, r)) => (Some(w), r),
            None => (None, false),
        },
        Some(w) => {
            sink.warn(
                &w.loc,
                format!(
                    "unexpected `{}`: only `weight W [reverse]` may follow the name",
                    w.text
                ),
            );
            (None, false)
        }
    }
}

/// `unicast_peer { IP [min_ttl N] [max_ttl N] ... }`.
fn unicast_peer(sink: &mut Sink, st: &Stmt, b: &mut InstBuild) {
    for line in block_lines(sink, st) {
        let w = &line.words[0];
        let Ok(addr) = w.text.parse() else {
            sink.error(
                &w.loc,
                format!(
                    "invalid unicast peer `{}`: expected an IPv4 or IPv6 address",
                    w.text
                ),
            );
            continue;
        };
        let mut peer = UnicastPeer {
            addr,
            min_ttl: None,
            max_ttl: None,
        };
        let mut i = 1;
        while i < line.words.len() {
            let opt = &line.words[i];
            match opt.text.as_str() {
                "min_ttl" | "max_ttl" => {
                    let Some(v) = line.words.get(i + 1) else {
                        sink.error(&opt.loc, format!("`{}` needs a value", opt.text));
                        break;
                    };
                    let ttl = uint_word(sink, line, v, 0, 255).map(|t| t as u8);
                    if opt.text == "min_ttl" {
                        peer.min_ttl = ttl;
                    } else {
                        peer.max_ttl = ttl;
                    }
                    i += 2;
                }
                _ => {
                    sink.warn(
                        &opt.loc,
                        format!("unknown option `{}` in `unicast_peer` is ignored", opt.text),
                    );
                    i += 1;
                }
            }
        }
        b.i().unicast_peer.push(peer);
    }
}

/// The lines of a list block, complaining about a missing block or nested
/// blocks.
fn block_lines<'s>(sink: &mut Sink, st: &'s Stmt) -> &'s [Stmt] {
    if st.block.is_none() {
        sink.error(
            st.loc(),
            format!("`{}` needs a `{{ ... }}` block", st.keyword()),
        );
    }
    warn_extra(sink, st, 0);
    for line in st.children() {
        if let Some(b) = &line.block {
            sink.error(&b.open, format!("unexpected block in `{}`", st.keyword()));
        }
    }
    st.children()
}

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

    if inst.virtual_router_id == 0 {
        sink.error(
            st.loc(),
            format!("vrrp_instance `{name}` needs a `virtual_router_id` (1 to 255)"),
        );
    }
    if inst.interface.is_none() {
        inst.interface = g.default_interface.clone();
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
                format!("vrrp_instance `{name}`: VRRP version 2 cannot carry IPv6 addresses; use version 3"),
            );
            2
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
                    super::model::fmt_duration(adv),
                    super::model::fmt_duration(rounded)
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
            (None, _) => sink.error(loc, "`authentication` needs an `auth_type` (PASS or AH)"),
            (_, None) => sink.error(loc, "`authentication` needs an `auth_pass`"),
        }
    }
    Some(inst)
}
