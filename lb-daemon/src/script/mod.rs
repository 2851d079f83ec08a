//! Scripts (notify scripts, vrrp_script, MISC_CHECK), as keepalived runs
//! them:
//! - this module: command lines split into words;
//! - `identity`: users and groups a script runs as;
//! - `security`: `enable_script_security`'s checks of a script's path;
//! - `run`: a script run to its end, bounded, its process group killed;
//! - `policy`: the user each script runs as and whether it may run, from
//!   `global_defs` (`script_user`, `enable_script_security`), and the
//!   command that starts it.

pub mod identity;
pub mod policy;
pub mod run;
pub mod security;

pub use policy::{Admitted, ScriptPolicy};

/// Splits a script line into words: whitespace separates, quotes group,
/// a backslash escapes the next character.
pub fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}
