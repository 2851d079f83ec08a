//! `lbctl conns [--limit N]`.

use lb_cli::lbctl::Args;
use lb_daemon::control::{
    protocol::{Command, ConnsResult, ProtoName, Source},
    views,
};

use crate::{exit::Failure, source, table};

pub fn run(args: &Args, limit: usize) -> Result<(), Failure> {
    let r: ConnsResult = source::read(args, Command::Conns { limit }, |view| {
        let mut c = view
            .connections(limit.saturating_add(1))
            .map_err(source::dataplane_error)?;
        let truncated = c.len() > limit;
        c.truncate(limit);
        Ok(ConnsResult {
            source: Source::PinnedMaps,
            connections: views::conns(c),
            truncated,
        })
    })?;
    if args.json {
        return crate::print_json(&r);
    }
    if r.connections.is_empty() {
        println!("no connections");
        return Ok(());
    }
    let mut t = table::Table::new(&[
        "PROTO", "CLIENT", "VIP", "BACKEND", "STATE", ">IDLE", ">EXPIRES",
    ]);
    for c in &r.connections {
        t.row(vec![
            match c.proto {
                ProtoName::Tcp => "tcp".into(),
                ProtoName::Udp => "udp".into(),
            },
            c.client.to_string(),
            c.vip.to_string(),
            c.backend.to_string(),
            c.state.clone(),
            table::duration(u64::from(c.idle_secs)),
            table::duration(u64::from(c.expires_secs)),
        ]);
    }
    t.print();
    if r.truncated {
        println!("(more than {limit} connections: raise --limit to see more)");
    }
    Ok(())
}
