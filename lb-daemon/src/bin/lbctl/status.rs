//! `lbctl status`.

use lb_cli::lbctl::Args;
use lb_daemon::control::{
    protocol::{Command, InterfaceInfo, Source, StatusResult},
    views,
};

use crate::{exit::Failure, source, table};

pub fn run(args: &Args) -> Result<(), Failure> {
    let st: StatusResult = source::read(args, Command::Status, |view| {
        let stats = view.stats().map_err(source::dataplane_error)?;
        let services = views::services(&stats);
        let mut interfaces: Vec<InterfaceInfo> = std::fs::read_dir(&args.pin_path)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().to_string();
                        name.strip_prefix("link_").map(|i| InterfaceInfo {
                            name: i.to_string(),
                            mode: "pinned".into(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(StatusResult {
            source: Source::PinnedMaps,
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: None,
            started_unix_ms: None,
            uptime_secs: None,
            dataplane: Some("xdp".into()),
            interfaces,
            pin_path: Some(args.pin_path.display().to_string()),
            config_file: None,
            config_loaded_unix_ms: None,
            last_reload: None,
            services: services.len(),
            backends: services.iter().map(|s| s.backends).sum(),
            vrrp_instances: 0,
            overrides: 0,
            announce: Vec::new(),
        })
    })?;
    if args.json {
        return crate::print_json(&st);
    }
    let mut t = table::Table::new(&["", ""]);
    match st.source {
        Source::Daemon => t.row(vec![
            "lbd".into(),
            format!(
                "{} (pid {}), up {}",
                st.version,
                table::opt(st.pid),
                st.uptime_secs.map_or("-".into(), table::duration)
            ),
        ]),
        Source::PinnedMaps => t.row(vec![
            "lbd".into(),
            "not running: the data plane forwards from its pinned maps".into(),
        ]),
    }
    let ifaces: Vec<String> = st
        .interfaces
        .iter()
        .map(|i| format!("{} ({})", i.name, i.mode))
        .collect();
    t.row(vec![
        "data plane".into(),
        match &st.dataplane {
            Some(d) if ifaces.is_empty() => d.clone(),
            Some(d) => format!("{d} on {}", ifaces.join(", ")),
            None => "none (no virtual_server)".into(),
        },
    ]);
    t.row(vec!["pin path".into(), table::opt(st.pin_path.as_ref())]);
    for a in &st.announce {
        t.row(vec![format!("announce {}", a.vip), a.state.clone()]);
    }
    if let Some(file) = &st.config_file {
        t.row(vec![
            "config".into(),
            format!(
                "{file}, loaded {}",
                st.config_loaded_unix_ms.map_or("-".into(), table::ago)
            ),
        ]);
    }
    if let Some(r) = &st.last_reload {
        t.row(vec![
            "last reload".into(),
            if r.ok {
                format!("ok, {}", table::ago(r.at_unix_ms))
            } else {
                format!(
                    "refused {}: {}",
                    table::ago(r.at_unix_ms),
                    r.error
                        .as_deref()
                        .unwrap_or("?")
                        .lines()
                        .next()
                        .unwrap_or("")
                )
            },
        ]);
    }
    t.row(vec!["services".into(), st.services.to_string()]);
    t.row(vec!["backends".into(), st.backends.to_string()]);
    t.row(vec!["vrrp instances".into(), st.vrrp_instances.to_string()]);
    if st.source == Source::Daemon {
        t.row(vec![
            "overrides".into(),
            format!("{} (until the next reload)", st.overrides),
        ]);
    }
    // Without the header line.
    let text = t.render();
    print!("{}", text.split_once('\n').map_or("", |(_, rest)| rest));
    Ok(())
}
