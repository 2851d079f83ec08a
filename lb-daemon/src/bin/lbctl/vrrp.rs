//! `lbctl vrrp`.

use lb_cli::lbctl::Args;
use lb_daemon::control::protocol::{Command, VrrpResult};

use crate::{exit::Failure, source, table};

pub fn run(args: &Args) -> Result<(), Failure> {
    // VRRP lives in the daemon only: nothing to read from pinned maps.
    let r: VrrpResult = source::ask(args, Command::Vrrp)?;
    if args.json {
        return crate::print_json(&r);
    }
    if r.instances.is_empty() {
        println!("no VRRP instances");
        return Ok(());
    }
    let mut t = table::Table::new(&[
        "INSTANCE",
        "INTERFACE",
        ">VRID",
        "STATE",
        ">PRIORITY",
        "MASTER",
        "VIPS",
        "LAST TRANSITION",
        ">SENT",
        ">RECEIVED",
        ">DROPPED",
    ]);
    for i in &r.instances {
        let state = match &i.error {
            Some(e) => format!("{} ({e})", i.state),
            None => i.state.clone(),
        };
        t.row(vec![
            i.name.clone(),
            i.interface.clone(),
            i.vrid.to_string(),
            state,
            format!("{}/{}", i.priority, i.effective_priority),
            table::opt(i.master),
            i.vips.join(","),
            i.last_transition.as_ref().map_or("-".into(), |t| {
                format!(
                    "{}→{} ({}) {}",
                    t.from,
                    t.to,
                    t.reason,
                    table::ago(t.at_unix_ms)
                )
            }),
            i.adverts_sent.to_string(),
            i.adverts_received.to_string(),
            i.adverts_dropped.to_string(),
        ]);
    }
    t.print();
    Ok(())
}
