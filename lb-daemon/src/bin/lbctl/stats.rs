//! `lbctl stats [--watch]`.

use std::time::Duration;

use lb_cli::lbctl::Args;
use lb_daemon::control::{
    protocol::{unix_ms, Command, Source, StatsResult},
    views,
};

use crate::{exit::Failure, source, table};

fn fetch(args: &Args) -> Result<StatsResult, Failure> {
    source::read(args, Command::Stats, |view| {
        let stats = view.stats().map_err(source::dataplane_error)?;
        Ok(StatsResult {
            source: Source::PinnedMaps,
            at_unix_ms: unix_ms(std::time::SystemTime::now()),
            global: views::global(&stats),
            services: views::services(&stats),
        })
    })
}

pub fn run(args: &Args, watch: bool, interval: f64) -> Result<(), Failure> {
    let mut previous: Option<StatsResult> = None;
    loop {
        let now = fetch(args)?;
        if args.json {
            if watch {
                // One document per line.
                let line = serde_json::to_string(&now)
                    .map_err(|e| Failure::new(crate::exit::Code::Failed, e))?;
                println!("{line}");
            } else {
                crate::print_json(&now)?;
            }
        } else {
            if watch {
                // Clear the screen between prints, like watch(1).
                print!("\x1b[H\x1b[2J");
            }
            print(&now, previous.as_ref());
        }
        if !watch {
            return Ok(());
        }
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        std::thread::sleep(Duration::from_secs_f64(interval));
        previous = Some(now);
    }
}

fn print(now: &StatsResult, previous: Option<&StatsResult>) {
    let secs = previous
        .map(|p| now.at_unix_ms.saturating_sub(p.at_unix_ms) as f64 / 1000.0)
        .filter(|s| *s > 0.0);
    let rate = |cur: u64, prev: Option<u64>| match (secs, prev) {
        (Some(s), Some(p)) => format!("{:.0}/s", cur.saturating_sub(p) as f64 / s),
        _ => "-".into(),
    };
    let mut t = table::Table::new(&["COUNTER", ">PACKETS", ">BYTES", ">PACKETS/S"]);
    for g in &now.global {
        let prev = previous.and_then(|p| p.global.iter().find(|x| x.name == g.name));
        t.row(vec![
            g.name.clone(),
            g.packets.to_string(),
            table::bytes(g.bytes),
            rate(g.packets, prev.map(|p| p.packets)),
        ]);
    }
    t.print();
    if now.services.is_empty() {
        return;
    }
    println!();
    let mut t = table::Table::new(&[
        "SERVICE",
        ">PACKETS",
        ">BYTES",
        ">CONNS",
        ">ACTIVE",
        ">INACTIVE",
        ">PACKETS/S",
        ">CONNS/S",
    ]);
    for s in &now.services {
        let prev = previous.and_then(|p| p.services.iter().find(|x| x.service == s.service));
        t.row(vec![
            s.service.clone(),
            s.packets.to_string(),
            table::bytes(s.bytes),
            s.new_conns.to_string(),
            s.active_conns.to_string(),
            s.inactive_conns.to_string(),
            rate(s.packets, prev.map(|p| p.packets)),
            rate(s.new_conns, prev.map(|p| p.new_conns)),
        ]);
    }
    t.print();
}
