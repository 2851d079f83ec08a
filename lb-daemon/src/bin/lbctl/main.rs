//! lbctl: inspect and control lbd. Its command line is in `lb_cli::lbctl`;
//! each verb has a module here, the tables are in `table`.

mod action;
mod backends;
mod config;
mod conns;
mod disable;
mod drain;
mod enable;
mod exit;
mod reload;
mod services;
mod set_weight;
mod source;
mod stats;
mod status;
mod sync;
mod table;
mod vrrp;

use clap::Parser;
use lb_cli::lbctl::{Args, Command};

fn main() -> std::process::ExitCode {
    // Rust ignores SIGPIPE, so a closed output pipe (`lbctl ... | head`)
    // made println! panic (exit 101); end quietly like other Unix tools.
    // SAFETY: restoring the default disposition before any thread starts.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let args = Args::parse();
    let result = match &args.command {
        Command::Status => status::run(&args),
        Command::Services => services::run(&args),
        Command::Backends { service } => backends::run(&args, service.as_ref()),
        Command::Vrrp => vrrp::run(&args),
        Command::Sync => sync::run(&args),
        Command::Stats { watch, interval } => stats::run(&args, *watch, *interval),
        Command::Conns { limit } => conns::run(&args, *limit),
        Command::SetWeight {
            service,
            backend,
            weight,
        } => set_weight::run(&args, service, *backend, *weight),
        Command::Drain { service, backend } => drain::run(&args, service, *backend),
        Command::Disable { service, backend } => disable::run(&args, service, *backend),
        Command::Enable { service, backend } => enable::run(&args, service, *backend),
        Command::Reload => reload::run(&args),
        Command::Config(c) => config::run(c),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if !e.message.is_empty() {
                eprintln!("lbctl: {}", e.message);
            }
            std::process::ExitCode::from(e.code as u8)
        }
    }
}

/// Prints `value` as JSON (one document).
pub fn print_json(value: &impl serde::Serialize) -> Result<(), exit::Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| exit::Failure::new(exit::Code::Failed, e))?;
    println!("{text}");
    Ok(())
}
