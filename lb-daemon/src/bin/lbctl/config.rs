//! `lbctl config check FILE` and `lbctl config dump FILE`.

use lb_cli::lbctl::ConfigCommand;

use crate::exit::{Code, Failure};

pub fn run(c: &ConfigCommand) -> Result<(), Failure> {
    let (ConfigCommand::Check { config_id, .. } | ConfigCommand::Dump { config_id, .. }) = c;
    if let Some(id) = config_id {
        lb_daemon::config::set_config_id(id);
    }
    match c {
        ConfigCommand::Check { file, .. } => {
            match lb_daemon::check::check_config(file, &mut std::io::stdout()) {
                0 => Ok(()),
                // The check printed why.
                _ => Err(Failure::new(Code::Failed, "")),
            }
        }
        // What lbd would run if started with the file: the errors whose bad
        // part is skipped are printed, as keepalived does, and the rest runs.
        ConfigCommand::Dump { file, .. } => {
            match lb_daemon::config::load_for(file, lb_daemon::config::Mode::Start) {
                Ok(loaded) => {
                    for w in &loaded.warnings {
                        eprintln!("{w}");
                    }
                    print!("{}", lb_daemon::config::dump_json(&loaded.config));
                    Ok(())
                }
                Err(diags) => {
                    eprint!("{diags}");
                    Err(Failure::new(Code::Failed, ""))
                }
            }
        }
    }
}
