//! `lbctl backends [VIP:PORT]`.

use lb_cli::lbctl::{Args, ServiceArg};
use lb_daemon::control::{
    protocol::{BackendsResult, Command, Source},
    views,
};

use crate::{
    exit::{Code, Failure},
    source, table,
};

pub fn run(args: &Args, service: Option<&ServiceArg>) -> Result<(), Failure> {
    let service_ref = service.map(crate::action::service_ref);
    let r: BackendsResult = source::read(
        args,
        Command::Backends {
            service: service_ref,
        },
        |view| {
            let stats = view.stats().map_err(source::dataplane_error)?;
            let only = match &service_ref {
                Some(r) => Some(
                    views::resolve(stats.services.iter().map(|s| (s.vip, s.proto)), r)
                        .map_err(|(_, m)| Failure::new(Code::NotFound, m))?,
                ),
                None => None,
            };
            Ok(BackendsResult {
                source: Source::PinnedMaps,
                backends: views::backends(&stats, only, None),
            })
        },
    )?;
    if args.json {
        return crate::print_json(&r);
    }
    if r.backends.is_empty() {
        println!("no backends");
        return Ok(());
    }
    let mut t = table::Table::new(&[
        "SERVICE",
        "BACKEND",
        ">WEIGHT",
        ">CONF",
        "OVERRIDE",
        "MAC",
        ">ACTIVE",
        ">INACTIVE",
        ">PACKETS",
        ">BYTES",
        "HEALTH",
        "LAST CHECK",
    ]);
    for b in &r.backends {
        let addr = std::net::SocketAddr::new(b.address, b.port);
        let mut name = addr.to_string();
        if b.sorry {
            name.push_str(" (sorry)");
        }
        if !b.ready {
            name.push_str(" (not ready)");
        }
        let (health, last) = match &b.health {
            Some(h) => (
                match &h.failure {
                    Some(f) if h.state == "down" => format!("down: {f}"),
                    _ => format!("{} ({})", h.state, h.status),
                },
                match (&h.last_result, h.last_check_unix_ms) {
                    (Some(r), Some(t)) => format!("{r} {}", table::ago(t)),
                    _ => "-".into(),
                },
            ),
            None => ("-".into(), "-".into()),
        };
        t.row(vec![
            b.service.clone(),
            name,
            b.weight.to_string(),
            table::opt(b.configured_weight),
            table::opt(b.override_),
            table::opt(b.mac.as_ref()),
            b.active_conns.to_string(),
            b.inactive_conns.to_string(),
            table::count(b.packets),
            table::bytes(b.bytes),
            health,
            last,
        ]);
    }
    t.print();
    Ok(())
}
