//! notify_master / notify_backup / notify_fault / notify_stop and the
//! generic `notify`, run as child processes that nobody waits for: a slow
//! or hanging script never delays an advert.
//!
//! Like keepalived, a script line is split into words (double or single
//! quotes group words) and executed directly, without a shell. The
//! specific script runs as configured; the generic one gets
//! `INSTANCE|GROUP NAME STATE [PRIORITY]` appended.

use std::process::Stdio;

use tracing::{debug, warn};

use crate::config::Notify;
use crate::script::split_words;

use super::instance::State;

/// keepalived's name for a state in notify arguments; Initialize is the
/// instance stopping.
pub fn state_word(state: State) -> &'static str {
    match state {
        State::Initialize => "STOP",
        s => s.as_str(),
    }
}

/// Whose state changed.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    Instance { name: &'a str, priority: u8 },
    Group { name: &'a str },
}

/// Runs the hooks of `notify` for `state`.
pub fn run(notify: &Notify, subject: Subject<'_>, state: State) {
    let specific = match state {
        State::Master => &notify.master,
        State::Backup => &notify.backup,
        State::Fault => &notify.fault,
        State::Initialize => &notify.stop,
    };
    if let Some(line) = specific {
        spawn(line, &[]);
    }
    if let Some(line) = &notify.notify {
        let mut args = Vec::new();
        match subject {
            Subject::Instance { name, priority } => {
                args.extend(["INSTANCE".to_string(), name.to_string()]);
                args.push(state_word(state).to_string());
                args.push(priority.to_string());
            }
            Subject::Group { name } => {
                args.extend(["GROUP".to_string(), name.to_string()]);
                args.push(state_word(state).to_string());
            }
        }
        spawn(line, &args);
    }
    let fifo_line = match subject {
        Subject::Instance { name, priority } => {
            super::fifo::line(false, name, state_word(state), priority)
        }
        Subject::Group { name } => super::fifo::line(true, name, state_word(state), 0),
    };
    super::fifo::write(&fifo_line);
}

/// Starts `line` with `extra` arguments; a task reaps it.
pub fn spawn(line: &str, extra: &[String]) {
    let words = split_words(line);
    let Some((program, args)) = words.split_first() else {
        warn!(script = line, "empty notify script");
        return;
    };
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match cmd.spawn() {
        Ok(mut child) => {
            debug!(script = line, ?extra, "notify script started");
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        Err(e) => warn!(script = line, "cannot run notify script: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_keepalived() {
        assert_eq!(
            split_words(r#"/bin/echo "a b" c 'd e'  f\ g"#),
            vec!["/bin/echo", "a b", "c", "d e", "f g"]
        );
        assert!(split_words("   ").is_empty());
        assert_eq!(split_words(r#"x """#), vec!["x", ""]);
    }
}
