//! `lbctl sync`.

use lb_cli::lbctl::Args;
use lb_daemon::control::protocol::{Command, SyncResult};

use crate::{exit::Failure, source};

pub fn run(args: &Args) -> Result<(), Failure> {
    // Sync lives in the daemon only: nothing to read from pinned maps.
    let r: SyncResult = source::ask(args, Command::Sync)?;
    if args.json {
        return crate::print_json(&r);
    }
    let Some(s) = r.sync else {
        println!("connection sync is off (no lvs_sync_daemon)");
        return Ok(());
    };
    let follows = match &s.vrrp_instance {
        Some(i) => format!("follows VRRP instance {i}"),
        None => "no VRRP instance: sends and receives".into(),
    };
    println!("role:      {} ({follows})", s.role);
    println!(
        "group:     {}:{} on {}, ttl {}, syncid {}, maxlen {}",
        s.group, s.port, s.interface, s.ttl, s.syncid, s.maxlen
    );
    if let Some(e) = &s.error {
        println!("error:     {e}");
    }
    println!(
        "sent:      {} messages, {} records",
        s.sent_messages, s.sent_records
    );
    println!(
        "received:  {} messages, {} records, {} entries written",
        s.received_messages, s.received_records, s.written
    );
    let lost: Vec<String> = s
        .dropped
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    println!(
        "dropped:   {}",
        if lost.is_empty() {
            "none".to_string()
        } else {
            lost.join(", ")
        }
    );
    Ok(())
}
