//! Robustness: no panic on truncated or garbled input, preprocessor lines,
//! diagnostics as a `std::error::Error`.

use super::corpus::fixtures;
use super::*;

/// A tiny deterministic generator: no external crates for fuzz-ish tests.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn never_panics_on_truncated_or_garbled_input() {
    const NOISE: [&str; 12] = [
        "{",
        "}",
        "\"",
        "#",
        "!",
        "\\",
        "\n",
        " ",
        "-",
        "/",
        "\u{e9}",
        "999999999999999999999",
    ];
    let mut rng = Lcg(0x5eed);
    for conf in fixtures() {
        let text = std::fs::read_to_string(&conf).unwrap();
        let chars: Vec<char> = text.chars().collect();
        // Every truncation point (by steps, to keep the test fast).
        for cut in (0..chars.len()).step_by(7) {
            let t: String = chars[..cut].iter().collect();
            let _ = parse_str(&t, &conf);
        }
        // Lines dropped one at a time.
        let lines: Vec<&str> = text.lines().collect();
        for skip in 0..lines.len() {
            let t: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| *l)
                .collect();
            let _ = parse_str(&t.join("\n"), &conf);
        }
        // Random replacements and insertions.
        for _ in 0..300 {
            let mut c = chars.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(c.len());
                let noise: Vec<char> = NOISE[rng.below(NOISE.len())].chars().collect();
                if rng.below(2) == 0 && at < c.len() {
                    c.splice(at..at + 1, noise);
                } else {
                    c.splice(at..at, noise);
                }
            }
            let t: String = c.into_iter().collect();
            let _ = parse_str(&t, &conf);
        }
    }
    // Degenerate inputs.
    for t in [
        "",
        "{",
        "}",
        "\"",
        "{{{{",
        "}}}}",
        "a {",
        "include",
        "include {",
        "\\",
        "x \\",
    ] {
        let _ = parse_str(t, Path::new("t.conf"));
    }
}

#[test]
fn preprocessor_leftovers_are_flagged() {
    assert_eq!(
        diags("$VIP=10.0.0.1\n$VIPS\nglobal_defs { @lb1 x\n}\n"),
        [
            "t.conf:2:1: warning: `$VIPS` is not defined by a `$NAME=value` line before it (no blank may come before `=`); the line is ignored",
            "t.conf:3:15: warning: `@lb1`: a conditional applies only at the start of a line; the line is ignored",
        ]
    );
}

#[test]
fn diagnostics_are_a_std_error() {
    let err: Box<dyn std::error::Error> =
        Box::new(parse_str("}\n", Path::new("x.conf")).unwrap_err());
    assert_eq!(
        err.to_string(),
        "x.conf:1:1: error: unexpected `}`: no block is open here"
    );
}
