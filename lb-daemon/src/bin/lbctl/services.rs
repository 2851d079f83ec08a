//! `lbctl services`.

use lb_cli::lbctl::Args;
use lb_daemon::control::{
    protocol::{Command, ServiceInfo, ServicesResult, Source},
    views,
};

use crate::{exit::Failure, source, table};

pub fn run(args: &Args) -> Result<(), Failure> {
    let r: ServicesResult = source::read(args, Command::Services, |view| {
        let stats = view.stats().map_err(source::dataplane_error)?;
        Ok(ServicesResult {
            source: Source::PinnedMaps,
            services: views::services(&stats),
        })
    })?;
    if args.json {
        return crate::print_json(&r);
    }
    if r.services.is_empty() {
        println!("no services");
        return Ok(());
    }
    print(&r.services);
    Ok(())
}

pub fn print(services: &[ServiceInfo]) {
    let mut t = table::Table::new(&[
        "SERVICE",
        "ALGO",
        "MODE",
        ">BACKENDS",
        ">ACTIVE",
        ">INACTIVE",
        ">CONNS",
        ">PACKETS",
        ">BYTES",
        "SORRY",
    ]);
    for s in services {
        t.row(vec![
            s.service.clone(),
            table::opt(s.algo.as_ref()),
            table::opt(s.mode.as_ref()),
            format!("{}/{}", s.backends_up, s.backends),
            s.active_conns.to_string(),
            s.inactive_conns.to_string(),
            table::count(s.new_conns),
            table::count(s.packets),
            table::bytes(s.bytes),
            table::opt(s.sorry_server),
        ]);
    }
    t.print();
}
