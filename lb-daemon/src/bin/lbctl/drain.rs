//! `lbctl drain VIP:PORT RIP:PORT`.

use std::net::SocketAddr;

use lb_cli::lbctl::{Args, ServiceArg};
use lb_daemon::control::protocol::Command;

use crate::{action, exit::Failure};

pub fn run(args: &Args, service: &ServiceArg, backend: SocketAddr) -> Result<(), Failure> {
    action::run(
        args,
        Command::Drain {
            service: action::service_ref(service),
            backend,
        },
    )
}
