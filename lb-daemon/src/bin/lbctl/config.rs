//! `lbctl config check FILE`.

use lb_cli::lbctl::ConfigCommand;

use crate::exit::{Code, Failure};

pub fn run(c: &ConfigCommand) -> Result<(), Failure> {
    match c {
        ConfigCommand::Check { file } => {
            match lb_daemon::check::check_config(file, &mut std::io::stdout()) {
                0 => Ok(()),
                // The check printed why.
                _ => Err(Failure::new(Code::Failed, "")),
            }
        }
    }
}
