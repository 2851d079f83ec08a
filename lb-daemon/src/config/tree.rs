//! Statement tree: tokens grouped into statements (`keyword args...`), each
//! optionally owning a `{ ... }` block, with `include` statements replaced
//! by the statements of the files they name.
//!
//! Files are read line by line through the [`preprocess`](super::preprocess)
//! stage, and an included file is read when its `include` line is met, as
//! keepalived does: definitions and conditionals in it apply to the lines
//! after the `include`.
//!
//! Every file must balance its own braces: a brace error is then reported in
//! the file that has it, instead of surfacing in an unrelated includer.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::diag::Sink;
use super::lexer::{lex_lines, TokKind, Token};
use super::model::Location;
use super::preprocess::{split_lines, Line, Preprocessor};

/// Includes nested deeper than this are surely a mistake (or a cycle that
/// defeated path canonicalisation); stop there rather than recurse forever.
const MAX_INCLUDE_DEPTH: usize = 32;

/// Blocks nest at most this deep (keepalived's deepest is 3 or 4). Deeper
/// input is a located error, skipped without recursion, so no file can
/// overflow the parser's (or a later pass's) stack.
pub(crate) const MAX_BLOCK_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    pub text: String,
    pub quoted: bool,
    pub loc: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    /// Where the `{` is.
    pub open: Location,
    pub stmts: Vec<Stmt>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stmt {
    /// Never empty: `words[0]` is the keyword.
    pub words: Vec<Word>,
    pub block: Option<Block>,
}

impl Stmt {
    pub fn keyword(&self) -> &str {
        self.words.first().map(|w| w.text.as_str()).unwrap_or("")
    }

    pub fn loc(&self) -> &Location {
        &self.words[0].loc
    }

    pub fn args(&self) -> &[Word] {
        self.words.get(1..).unwrap_or(&[])
    }

    pub fn arg(&self, i: usize) -> Option<&Word> {
        self.words.get(i + 1)
    }

    /// The statements of the block, or none when there is no block.
    pub fn children(&self) -> &[Stmt] {
        self.block
            .as_ref()
            .map(|b| b.stmts.as_slice())
            .unwrap_or(&[])
    }
}

/// Parses `text` as the content of `file`, expanding includes from disk.
pub(crate) fn parse_file_text(
    text: &str,
    file: &Path,
    pp: &mut Preprocessor,
    sink: &mut Sink,
) -> Vec<Stmt> {
    let mut reader = Reader {
        pp,
        stack: vec![identity(file)],
    };
    sink.note_file(file);
    reader.file(text, file, sink)
}

/// What reading a file set carries from file to file.
struct Reader<'a> {
    pp: &'a mut Preprocessor,
    /// The files being read, outermost first (for cycle detection).
    stack: Vec<PathBuf>,
}

/// Statements of the files an `include` line named, by the line and column
/// of its keyword.
type Included = HashMap<(u32, u32), Vec<Stmt>>;

impl Reader<'_> {
    /// Preprocesses and parses one file's text; its includes are read when
    /// their line is met.
    fn file(&mut self, text: &str, file: &Path, sink: &mut Sink) -> Vec<Stmt> {
        let mut lines = Vec::new();
        let mut included = Included::new();
        let mut produced = Vec::new();
        for raw in split_lines(text) {
            self.pp.feed(raw, file, sink, &mut produced);
            for l in produced.drain(..) {
                if let Some(words) = include_words(&l, file) {
                    let key = (l.line, words[0].loc.col);
                    let stmts = self.include(&words, file, sink);
                    included.insert(key, stmts);
                }
                lines.push(l);
            }
        }
        self.pp.end_file();
        let stmts = build(&lines, file, sink);
        self.expand_includes(stmts, &mut included, file, sink)
    }

    /// Reads the files an `include` statement (`words`) names.
    fn include(&mut self, words: &[Word], file: &Path, sink: &mut Sink) -> Vec<Stmt> {
        let loc = &words[0].loc;
        let Some(pattern) = words.get(1) else {
            sink.structural(loc, "`include` needs a file name or glob pattern");
            return Vec::new();
        };
        for extra in &words[2..] {
            // keepalived reads only the first word; say so rather than
            // silently dropping files the operator meant to include.
            sink.warn(
                &extra.loc,
                format!("`include` takes one pattern; `{}` is ignored", extra.text),
            );
        }
        let mut out = Vec::new();
        for path in resolve_include(&pattern.text, file, &pattern.loc, sink) {
            let id = identity(&path);
            if self.stack.contains(&id) {
                sink.structural(
                    &pattern.loc,
                    format!("include cycle: `{}` is already being read", path.display()),
                );
                continue;
            }
            if self.stack.len() >= MAX_INCLUDE_DEPTH {
                sink.structural(
                    &pattern.loc,
                    format!("includes nested more than {MAX_INCLUDE_DEPTH} deep"),
                );
                continue;
            }
            let Some(text) = read_to_string(&path, sink, Some(&pattern.loc)) else {
                continue;
            };
            sink.note_file(&path);
            self.stack.push(id);
            out.extend(self.file(&text, &path, sink));
            self.stack.pop();
        }
        out
    }

    /// Replaces every `include PATTERN` statement (at any depth) with the
    /// statements of the files the pattern matched.
    fn expand_includes(
        &mut self,
        stmts: Vec<Stmt>,
        included: &mut Included,
        file: &Path,
        sink: &mut Sink,
    ) -> Vec<Stmt> {
        let mut out = Vec::with_capacity(stmts.len());
        for mut st in stmts {
            if st.keyword() != "include" {
                if let Some(block) = st.block.take() {
                    st.block = Some(Block {
                        open: block.open,
                        stmts: self.expand_includes(block.stmts, included, file, sink),
                    });
                }
                out.push(st);
                continue;
            }
            if st.block.is_some() {
                sink.structural(st.loc(), "`include` does not take a block");
            }
            let key = (st.loc().line, st.loc().col);
            match included.remove(&key) {
                Some(stmts) => out.extend(stmts),
                // An `include` its line did not show (joined from two lines
                // by `\`): read now.
                None => out.extend(self.include(&st.words, file, sink)),
            }
        }
        out
    }
}

/// The words of `l` when it is an `include` line.
fn include_words(l: &Line, file: &Path) -> Option<Vec<Word>> {
    let starts = l.chars.iter().take(8).collect::<String>();
    if !(starts.starts_with("include")
        && starts.chars().nth(7).is_some_and(|c| c == ' ' || c == '\t'))
    {
        return None;
    }
    // Lex problems on this line are reported when the file is lexed.
    let mut scratch = Sink::default();
    let mut words = Vec::new();
    for t in lex_lines(std::slice::from_ref(l), file, &mut scratch) {
        match t.kind {
            TokKind::Word { text, quoted } => words.push(Word {
                text,
                quoted,
                loc: Location::new(file, t.line, t.col),
            }),
            TokKind::Newline => {}
            // `include x {`: left to the tree, which reports the block.
            TokKind::Open | TokKind::Close => return None,
        }
    }
    Some(words)
}

/// Reads and parses `file`; `None` (with an error recorded) if unreadable.
pub(crate) fn read_to_string(
    file: &Path,
    sink: &mut Sink,
    at: Option<&Location>,
) -> Option<String> {
    match fs::read(file) {
        Ok(bytes) => {
            if let Some(line) = binary_line(&bytes) {
                // keepalived reads on, warning about each garbage "keyword";
                // the whole file is most likely not what was meant (a
                // half-copied or wrong file): say so once.
                let msg = format!(
                    "`{}` holds binary data (a NUL byte or invalid UTF-8 from line {line}): is it a half-written or wrong file?",
                    file.display()
                );
                sink.structural(&Location::new(file, line, 1), msg);
            }
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Err(e) => {
            let msg = format!("cannot read `{}`: {e}", file.display());
            match at {
                Some(loc) => sink.structural(loc, msg),
                None => sink.file_error(file, msg),
            }
            None
        }
    }
}

/// The 1-based line of the first NUL byte or invalid UTF-8 sequence.
fn binary_line(bytes: &[u8]) -> Option<u32> {
    let bad = match std::str::from_utf8(bytes) {
        Ok(text) => text.find('\0')?,
        Err(e) => e.valid_up_to(),
    };
    let nul = bytes[..bad].iter().position(|&b| b == 0).unwrap_or(bad);
    Some(1 + bytes[..nul].iter().filter(|&&b| b == b'\n').count() as u32)
}

/// What identifies a file for cycle detection.
fn identity(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Groups the tokens of one file's lines into a statement tree.
fn build(lines: &[Line], file: &Path, sink: &mut Sink) -> Vec<Stmt> {
    let toks = lex_lines(lines, file, sink);
    let mut pos = 0;
    let mut out = parse_block(&toks, &mut pos, file, None, 0, sink);
    // Stray `}` at top level end `parse_block` early; report and go on.
    while pos < toks.len() {
        let t = &toks[pos];
        sink.structural(
            &Location::new(file, t.line, t.col),
            "unexpected `}`: no block is open here",
        );
        pos += 1;
        out.extend(parse_block(&toks, &mut pos, file, None, 0, sink));
    }
    out
}

/// Parses statements until the `}` closing `open` (or end of input).
/// `open` is `None` at top level, where a `}` is returned to the caller.
fn parse_block(
    toks: &[Token],
    pos: &mut usize,
    file: &Path,
    open: Option<(&Location, &str)>,
    depth: usize,
    sink: &mut Sink,
) -> Vec<Stmt> {
    let mut stmts: Vec<Stmt> = Vec::new();
    let mut cur: Vec<Word> = Vec::new();
    // True while only line ends separate the last statement from here, so a
    // `{` on a following line still opens that statement's block.
    let mut last_can_take_block = false;

    while let Some(t) = toks.get(*pos) {
        let loc = Location::new(file, t.line, t.col);
        match &t.kind {
            TokKind::Word { text, quoted } => {
                cur.push(Word {
                    text: text.clone(),
                    quoted: *quoted,
                    loc,
                });
                *pos += 1;
            }
            TokKind::Newline => {
                *pos += 1;
                if !cur.is_empty() {
                    stmts.push(Stmt {
                        words: std::mem::take(&mut cur),
                        block: None,
                    });
                    last_can_take_block = true;
                }
            }
            TokKind::Open => {
                *pos += 1;
                let owner_name = cur
                    .first()
                    .map(|w| w.text.clone())
                    .or_else(|| {
                        if last_can_take_block {
                            stmts.last().map(|s| s.keyword().to_string())
                        } else {
                            None
                        }
                    })
                    .unwrap_or_default();
                let inner = if depth >= MAX_BLOCK_DEPTH {
                    // Structural: a file this deep is broken, a reload keeps
                    // the running configuration.
                    sink.structural(
                        &loc,
                        format!("blocks nested more than {MAX_BLOCK_DEPTH} deep"),
                    );
                    skip_block(toks, pos);
                    Vec::new()
                } else {
                    parse_block(toks, pos, file, Some((&loc, &owner_name)), depth + 1, sink)
                };
                let block = Block {
                    open: loc.clone(),
                    stmts: inner,
                };
                if !cur.is_empty() {
                    stmts.push(Stmt {
                        words: std::mem::take(&mut cur),
                        block: Some(block),
                    });
                } else if let Some(last) = stmts.last_mut().filter(|_| last_can_take_block) {
                    last.block = Some(block);
                } else {
                    sink.structural(&loc, "unexpected `{`: it does not follow a keyword");
                }
                last_can_take_block = false;
            }
            TokKind::Close => {
                if !cur.is_empty() {
                    stmts.push(Stmt {
                        words: std::mem::take(&mut cur),
                        block: None,
                    });
                }
                if open.is_some() {
                    *pos += 1;
                }
                // At top level the caller reports the stray `}`.
                return stmts;
            }
        }
    }
    if !cur.is_empty() {
        stmts.push(Stmt {
            words: cur,
            block: None,
        });
    }
    if let Some((loc, owner)) = open {
        let what = if owner.is_empty() {
            String::new()
        } else {
            format!(" of `{owner}`")
        };
        sink.structural(
            loc,
            format!("unclosed `{{`: the block{what} is never closed with `}}`"),
        );
    }
    stmts
}

/// Skips the rest of a block whose `{` was just read, nested blocks
/// included, by counting (no recursion).
fn skip_block(toks: &[Token], pos: &mut usize) {
    let mut open = 1usize;
    while let Some(t) = toks.get(*pos) {
        *pos += 1;
        match t.kind {
            TokKind::Open => open += 1,
            TokKind::Close => {
                open -= 1;
                if open == 0 {
                    return;
                }
            }
            _ => {}
        }
    }
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Files named by an include pattern, relative to the including file's
/// directory when not absolute.
fn resolve_include(pattern: &str, from: &Path, at: &Location, sink: &mut Sink) -> Vec<PathBuf> {
    let base = from.parent().unwrap_or_else(|| Path::new(""));
    let full = if Path::new(pattern).is_absolute() {
        PathBuf::from(pattern)
    } else {
        base.join(pattern)
    };
    if !is_glob(pattern) {
        if full.is_file() {
            return vec![full];
        }
        sink.structural(
            at,
            format!("included file `{}` does not exist", full.display()),
        );
        return Vec::new();
    }
    let Some(full_str) = full.to_str() else {
        sink.structural(at, "include pattern is not valid UTF-8");
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = match glob::glob(full_str) {
        Ok(paths) => paths
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect(),
        Err(e) => {
            sink.structural(at, format!("invalid include pattern `{pattern}`: {e}"));
            return Vec::new();
        }
    };
    found.sort();
    if found.is_empty() {
        // An empty conf.d directory is normal; only a plain missing file is
        // an error.
        sink.warn(
            at,
            format!("include pattern `{}` matches no file", full.display()),
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> (Vec<Stmt>, Vec<String>) {
        let mut sink = Sink::default();
        let mut pp = Preprocessor::new(None);
        let st = parse_file_text(text, Path::new("t.conf"), &mut pp, &mut sink);
        let d = sink.finish().iter().map(|d| d.to_string()).collect();
        (st, d)
    }

    fn shape(stmts: &[Stmt]) -> String {
        stmts
            .iter()
            .map(|s| {
                let w: Vec<&str> = s.words.iter().map(|w| w.text.as_str()).collect();
                match &s.block {
                    Some(b) => format!("{}{{{}}}", w.join(" "), shape(&b.stmts)),
                    None => w.join(" "),
                }
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    #[test]
    fn brace_on_same_or_next_line_and_one_line_blocks() {
        let (st, d) = tree("a 1 {\n b 2\n}\nc\n\n{\n d\n}\ne { f 1 } g\nh { i { j } }\n");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(shape(&st), "a 1{b 2};c{d};e{f 1};g;h{i{j}}");
    }

    #[test]
    fn nesting_past_the_limit_is_a_located_error_not_a_stack_overflow() {
        let deep = 100_000;
        let text = format!(
            "{}{}\nglobal_defs {{\n}}\n",
            "a {\n".repeat(deep),
            "}\n".repeat(deep)
        );
        let (stmts, errors) = tree(&text);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains(&format!(":{}:", MAX_BLOCK_DEPTH + 1))
                && errors[0].contains("nested more than 32 deep"),
            "{errors:?}"
        );
        // What follows the deep block is still read.
        assert_eq!(stmts.last().unwrap().keyword(), "global_defs");
        let ok = format!(
            "{}{}",
            "a {\n".repeat(MAX_BLOCK_DEPTH),
            "}\n".repeat(MAX_BLOCK_DEPTH)
        );
        assert!(tree(&ok).1.is_empty());
    }

    #[test]
    fn stray_close_and_unclosed_open() {
        let (st, d) = tree("a {\n b\n}\n}\nc {\n d\n");
        assert_eq!(shape(&st), "a{b};c{d}");
        assert_eq!(
            d,
            [
                "t.conf:4:1: error: unexpected `}`: no block is open here",
                "t.conf:5:3: error: unclosed `{`: the block of `c` is never closed with `}`",
            ]
        );
    }

    #[test]
    fn orphan_open_brace() {
        let (_, d) = tree("a { }\n{ b }\n");
        assert_eq!(
            d,
            ["t.conf:2:1: error: unexpected `{`: it does not follow a keyword"]
        );
    }

    #[test]
    fn missing_include_is_an_error_at_its_location() {
        let (_, d) = tree("x\n  include nope/missing.conf\n");
        assert_eq!(
            d,
            ["t.conf:2:11: error: included file `nope/missing.conf` does not exist"]
        );
    }
}
