//! Lexer for keepalived.conf(5) text.
//!
//! keepalived's rules, as its reader applies them:
//! * `#` and `!` outside double quotes start a comment that runs to the end
//!   of the line (so `auth_pass ab!cd` is `ab`); `\#` and `\!` are the
//!   literal characters;
//! * a `\` as the last character of a line joins the next line to it;
//! * `{` and `}` outside quotes are tokens of their own wherever they are,
//!   which is what lets several statements share a line
//!   (`real_server 10.0.0.1 80 { weight 2 }`);
//! * words are separated by blanks; `"..."` groups blanks into one word.
//!
//! Every token carries the exact 1-based line and column it starts at.

use std::path::Path;

use super::diag::Sink;
use super::model::Location;
#[cfg(test)]
use super::preprocess::split_lines;
use super::preprocess::Line;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokKind {
    /// A word; `quoted` tells whether any part of it was in double quotes.
    Word {
        text: String,
        quoted: bool,
    },
    Open,
    Close,
    /// End of a logical line (statements end here).
    Newline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: TokKind,
    pub line: u32,
    pub col: u32,
}

/// Splits `text` (the content of `file`) into tokens, as written (no
/// preprocessing). Problems (an unterminated quote) go to `sink`; lexing
/// always completes.
#[cfg(test)]
pub(crate) fn lex(text: &str, file: &Path, sink: &mut Sink) -> Vec<Token> {
    lex_lines(&split_lines(text), file, sink)
}

/// Splits preprocessed lines of `file` into tokens; a token's position is
/// the line and column its first character came from.
pub(crate) fn lex_lines(lines: &[Line], file: &Path, sink: &mut Sink) -> Vec<Token> {
    let mut toks = Vec::new();
    for l in lines {
        lex_line(l, file, sink, &mut toks);
    }
    toks
}

/// The word being built: its text, start position and whether quoted.
type Partial = Option<(String, u32, u32, bool)>;

fn flush(word: &mut Partial, toks: &mut Vec<Token>) {
    if let Some((text, line, col, quoted)) = word.take() {
        toks.push(Token {
            kind: TokKind::Word { text, quoted },
            line,
            col,
        });
    }
}

fn lex_line(l: &Line, file: &Path, sink: &mut Sink, toks: &mut Vec<Token>) {
    let chars = &l.chars;
    let line = l.line;
    let col_at = |i: usize| l.cols.get(i).copied().unwrap_or(l.end_col);
    let mut word: Partial = None;
    let mut i = 0usize;
    let mut continued = false;
    while i < chars.len() {
        let c = chars[i];
        let col = col_at(i);
        match c {
            ' ' | '\t' => {
                flush(&mut word, toks);
                i += 1;
            }
            '#' | '!' => {
                // Comment to end of line; the line end itself is kept.
                break;
            }
            '{' | '}' => {
                flush(&mut word, toks);
                toks.push(Token {
                    kind: if c == '{' {
                        TokKind::Open
                    } else {
                        TokKind::Close
                    },
                    line,
                    col,
                });
                i += 1;
            }
            '\\' => match chars.get(i + 1).copied() {
                // Line continuation: the next line joins this one.
                None => {
                    continued = true;
                    i += 1;
                }
                Some(n @ ('#' | '!')) => {
                    push_char(&mut word, n, line, col, false);
                    i += 2;
                }
                Some(n) => {
                    // Other escapes are kept as written, as keepalived does.
                    push_char(&mut word, '\\', line, col, false);
                    push_char(&mut word, n, line, col, false);
                    i += 2;
                }
            },
            '"' => {
                let w = word.get_or_insert_with(|| (String::new(), line, col, true));
                w.3 = true;
                i += 1;
                let mut closed = false;
                while i < chars.len() {
                    let q = chars[i];
                    if q == '"' {
                        closed = true;
                        i += 1;
                        break;
                    }
                    if q == '\\' {
                        if let Some(&n @ ('"' | '\\')) = chars.get(i + 1) {
                            w.0.push(n);
                            i += 2;
                            continue;
                        }
                    }
                    w.0.push(q);
                    i += 1;
                }
                if !closed {
                    sink.error(
                        &Location::new(file, line, col),
                        "unterminated quoted string: add the closing `\"` on the same line",
                    );
                }
            }
            _ => {
                push_char(&mut word, c, line, col, false);
                i += 1;
            }
        }
    }
    flush(&mut word, toks);
    if l.newline && !continued {
        toks.push(Token {
            kind: TokKind::Newline,
            line,
            col: l.end_col,
        });
    }
}

fn push_char(word: &mut Option<(String, u32, u32, bool)>, c: char, line: u32, col: u32, q: bool) {
    let w = word.get_or_insert_with(|| (String::new(), line, col, q));
    w.0.push(c);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<(String, u32, u32)> {
        let mut sink = Sink::default();
        lex(text, Path::new("t.conf"), &mut sink)
            .into_iter()
            .map(|t| match t.kind {
                TokKind::Word { text, .. } => (text, t.line, t.col),
                TokKind::Open => ("{".into(), t.line, t.col),
                TokKind::Close => ("}".into(), t.line, t.col),
                TokKind::Newline => ("\\n".into(), t.line, t.col),
            })
            .collect()
    }

    #[test]
    fn positions_and_comments() {
        let w = words("a bc # x\n  !full\n\td \"e f\"!c\n");
        let want: Vec<(String, u32, u32)> = vec![
            ("a".into(), 1, 1),
            ("bc".into(), 1, 3),
            ("\\n".into(), 1, 9),
            ("\\n".into(), 2, 8),
            ("d".into(), 3, 2),
            ("e f".into(), 3, 4),
            ("\\n".into(), 3, 11),
        ];
        assert_eq!(w, want);
    }

    #[test]
    fn braces_split_words_and_escapes() {
        let w = words("x{y}z \\#a\\!b");
        let texts: Vec<&str> = w.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(texts, ["x", "{", "y", "}", "z", "#a!b"]);
        assert_eq!((w[1].1, w[1].2), (1, 2));
    }

    #[test]
    fn continuation_joins_lines() {
        let w = words("a \\\n b\nc");
        let texts: Vec<&str> = w.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(texts, ["a", "b", "\\n", "c"]);
        assert_eq!((w[1].1, w[1].2), (2, 2));
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        let mut sink = Sink::default();
        let t = lex("script \"abc\n", Path::new("t.conf"), &mut sink);
        assert_eq!(t.len(), 3);
        let d = sink.finish();
        assert_eq!(
            d[0].to_string(),
            "t.conf:1:8: error: unterminated quoted string: add the closing `\"` on the same line"
        );
    }

    #[test]
    fn crlf_and_quoted_comment_chars() {
        let w = words("a \"#!{}\"\r\nb");
        let texts: Vec<&str> = w.iter().map(|t| t.0.as_str()).collect();
        assert_eq!(texts, ["a", "#!{}", "\\n", "b"]);
        assert_eq!((w[3].1, w[3].2), (2, 1));
    }
}
