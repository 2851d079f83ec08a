//! What set-weight, drain, disable and enable share.

use lb_cli::lbctl::{Args, ProtoArg, ServiceArg};
use lb_daemon::control::protocol::{ActionResult, Command, ProtoName, ServiceRef};

use crate::{exit::Failure, source};

pub fn service_ref(s: &ServiceArg) -> ServiceRef {
    ServiceRef {
        vip: s.addr,
        proto: s.proto.map(|p| match p {
            ProtoArg::Tcp => ProtoName::Tcp,
            ProtoArg::Udp => ProtoName::Udp,
        }),
    }
}

pub fn run(args: &Args, command: Command) -> Result<(), Failure> {
    let r: ActionResult = source::ask(args, command)?;
    if args.json {
        return crate::print_json(&r);
    }
    println!("{}", r.message);
    Ok(())
}
