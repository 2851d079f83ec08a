//! `lbctl set-weight VIP:PORT RIP:PORT W`.

use std::net::SocketAddr;

use lb_cli::lbctl::{Args, ServiceArg};
use lb_daemon::control::protocol::Command;

use crate::{action, exit::Failure};

pub fn run(
    args: &Args,
    service: &ServiceArg,
    backend: SocketAddr,
    weight: u32,
) -> Result<(), Failure> {
    action::run(
        args,
        Command::SetWeight {
            service: action::service_ref(service),
            backend,
            weight,
        },
    )
}
