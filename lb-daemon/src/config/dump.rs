//! Normalised JSON dump of a [`Config`], for golden tests and `lbctl`.
//! The output is stable: fields in declaration order, defaults filled in,
//! no source locations (so no absolute paths).

use super::model::Config;

/// Pretty-printed JSON of `config`, ending with a newline.
pub fn dump_json(config: &Config) -> String {
    // The model contains only strings, numbers, booleans, sequences and
    // string-keyed structs, which serde_json always serialises.
    let mut s = serde_json::to_string_pretty(config)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise: {e}\"}}"));
    s.push('\n');
    s
}
