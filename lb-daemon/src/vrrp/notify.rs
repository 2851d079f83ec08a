//! notify_master / notify_backup / notify_fault / notify_stop and the
//! generic `notify`, run as child processes that nobody waits for: a slow
//! or hanging script never delays an advert.
//!
//! Like keepalived, a script line is split into words (double or single
//! quotes group words) and executed directly, without a shell. The
//! specific script runs as configured; the generic one gets
//! `INSTANCE|GROUP NAME STATE [PRIORITY]` appended.

use std::time::Duration;

use tracing::{debug, warn};

use crate::config::Notify;
use crate::script::run::{run_script, ScriptEnd};

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

/// How long a notify script may run before its process group is killed.
pub const NOTIFY_LIMIT: Duration = Duration::from_secs(60);

/// Starts `line` with `extra` arguments in a task of its own: bounded by
/// [`NOTIFY_LIMIT`], its process group killed when it ends, reaped.
pub fn spawn(line: &str, extra: &[String]) {
    let line = line.to_string();
    let extra = extra.to_vec();
    tokio::spawn(async move {
        debug!(script = %line, ?extra, "notify script started");
        match run_script(&line, None, &extra, NOTIFY_LIMIT).await {
            ScriptEnd::Exited(0) => {}
            end => warn!(script = %line, "notify script {end}"),
        }
    });
}

#[cfg(test)]
mod tests {
    use crate::script::split_words;

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
