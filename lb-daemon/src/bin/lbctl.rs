//! lbctl: inspect and control the load balancer.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use lb_daemon::check;

#[derive(Debug, Parser)]
#[command(
    name = "lbctl",
    version,
    about = "Inspect and control the lbd load balancer"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Work with configuration files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Check a keepalived.conf file: exit 0 when valid, 1 when not.
    Check { file: PathBuf },
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let code = match args.command {
        Command::Config(ConfigCommand::Check { file }) => {
            check::check_config(&file, &mut std::io::stdout())
        }
    };
    std::process::ExitCode::from(code as u8)
}
