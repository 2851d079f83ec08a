//! Where read commands get their answer: lbd over the control socket, or,
//! when lbd is down, the maps it left pinned (said on stderr).

use lb_cli::lbctl::Args;
use lb_daemon::{
    control::{
        client::{self, ClientError},
        protocol::Command,
    },
    dataplane::bpf::Maps,
};
use serde::de::DeserializeOwned;

use crate::exit::{Code, Failure};

/// Asks lbd; if it is not running, builds the answer from the pinned maps.
pub fn read<T: DeserializeOwned>(
    args: &Args,
    command: Command,
    fallback: impl FnOnce(&Maps) -> Result<T, Failure>,
) -> Result<T, Failure> {
    match client::request(&args.control_socket, command, timeout(args)) {
        Ok(v) => Ok(v),
        Err(e @ ClientError::NotRunning { .. }) => {
            let view = Maps::from_pins(&args.pin_path).map_err(|pe| {
                Failure::new(
                    Code::Unreachable,
                    format!(
                        "{e}; no pinned maps under {} either ({pe})",
                        args.pin_path.display()
                    ),
                )
            })?;
            eprintln!(
                "lbctl: lbd is not running; showing the maps pinned under {} \
                 (read-only: counters only, no health checks or configuration)",
                args.pin_path.display()
            );
            fallback(&view)
        }
        Err(e) => Err(e.into()),
    }
}

/// Asks lbd (actions: no fallback).
pub fn ask<T: DeserializeOwned>(args: &Args, command: Command) -> Result<T, Failure> {
    client::request(&args.control_socket, command, timeout(args)).map_err(|e| match e {
        ClientError::NotRunning { .. } => {
            Failure::new(Code::Unreachable, format!("{e}; this needs a running lbd"))
        }
        e => e.into(),
    })
}

/// `--timeout`.
fn timeout(args: &Args) -> std::time::Duration {
    std::time::Duration::from_secs(args.timeout)
}

pub fn dataplane_error(e: impl std::fmt::Display) -> Failure {
    Failure::new(Code::Failed, format!("reading the pinned maps: {e}"))
}
