//! `lbctl reload`.

use lb_cli::lbctl::Args;
use lb_daemon::control::protocol::{Command, ReloadResult};

use crate::{exit::Failure, source};

pub fn run(args: &Args) -> Result<(), Failure> {
    let r: ReloadResult = source::ask(args, Command::Reload)?;
    if args.json {
        return crate::print_json(&r);
    }
    println!("{}", r.message);
    Ok(())
}
