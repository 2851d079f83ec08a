//! keepalived's line preprocessor, applied to each physical line before it
//! is split into words (keepalived.conf(5), "Conditional configuration and
//! configuration id" and "Parameter substitution"; semantics as keepalived's
//! `read_line` applies them):
//!
//! * `@ID rest` keeps `rest` only when the configuration id is `ID`;
//!   `@^ID rest` keeps it only when it is not. A line with nothing after the
//!   id is dropped. The id is `lbd -i ID`, by default the host name up to its
//!   first `.`, as keepalived's.
//! * `$NAME=value` (no blank before `=`) defines `NAME` for the lines that
//!   follow, in every file read after it; a value ending in `\` continues on
//!   the next lines until one does not end in `\` (an empty line ends it too).
//! * `$NAME` (followed by a blank, `,`, `)` or the line end) and `${NAME}`
//!   are replaced by the value; a multi-line value only where it ends the
//!   line, its later lines becoming lines of their own. An undefined name is
//!   left as written. The result is read again (it may hold `@` or `$`).
//!   Built in: `$_PWD`, `$_INSTANCE` (the configuration id), `${_RANDOM MIN
//!   MAX}`, `$_HASH` (`#`), `$_BANG` (`!`).
//! * `~SEQ(NAME, [START, [STEP,]] END) text` repeats `text` with `$NAME`
//!   set to each number in turn (`~SEQx` writes them in hex).
//!
//! Lines keep the line number they came from; text put in by a substitution
//! takes the column of the `$` it replaced, so errors still point at the
//! line and column an operator can find.

use std::path::Path;

use super::diag::Sink;
use super::model::Location;

/// A line longer than this after substitution is surely a definition that
/// uses itself; keepalived stops at its line buffer size as well.
const MAX_LINE_CHARS: usize = 64 * 1024;
/// Bounds on re-reading a substituted line, on nesting of multi-line and
/// `~SEQ` expansions, and on the lines one `~SEQ` may produce.
const MAX_ROUNDS: usize = 64;
const MAX_NESTING: usize = 16;
const MAX_SEQ_LINES: i128 = 100_000;
const MAX_REPLACEMENTS: usize = 1_000;

/// One line as the lexer reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    /// 1-based line number in its file.
    pub line: u32,
    pub chars: Vec<char>,
    /// The 1-based column each char came from.
    pub cols: Vec<u32>,
    /// The column the line end is reported at.
    pub end_col: u32,
    /// Whether a line end follows (false only for a file's unterminated
    /// last line).
    pub newline: bool,
}

impl Line {
    /// `text` as written on line `line`, columns counting from 1.
    pub fn raw(line: u32, text: &str, newline: bool) -> Line {
        let chars: Vec<char> = text.chars().collect();
        let cols = (1..=chars.len() as u32).collect();
        Line {
            line,
            end_col: chars.len() as u32 + 1,
            chars,
            cols,
            newline,
        }
    }

    fn text(&self) -> String {
        self.chars.iter().collect()
    }

    fn starts_with(&self, s: &str) -> bool {
        let mut it = self.chars.iter();
        s.chars().all(|c| it.next() == Some(&c))
    }

    fn drain_front(&mut self, n: usize) {
        self.chars.drain(..n);
        self.cols.drain(..n);
    }

    fn truncate(&mut self, n: usize) {
        self.chars.truncate(n);
        self.cols.truncate(n);
    }

    /// Removes the comment (an unquoted, unescaped `#` or `!` to the end)
    /// and blanks at both ends, as keepalived does before looking at a
    /// line. Escapes are kept for the lexer.
    fn strip(&mut self) {
        let mut quoted = false;
        let mut i = 0;
        while i < self.chars.len() {
            match self.chars[i] {
                '"' => quoted = !quoted,
                '\\' => i += 1,
                '#' | '!' if !quoted => {
                    self.truncate(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let end = self
            .chars
            .iter()
            .rposition(|c| !is_blank(*c))
            .map_or(0, |p| p + 1);
        self.truncate(end);
        let start = self.chars.iter().position(|c| !is_blank(*c)).unwrap_or(0);
        self.drain_front(start);
    }

    fn loc(&self, file: &Path, i: usize) -> Location {
        let col = self.cols.get(i).copied().unwrap_or(self.end_col);
        Location::new(file, self.line, col)
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    Pwd,
    Instance,
    Random,
}

#[derive(Debug, Clone)]
struct Def {
    name: String,
    /// The value's lines (one unless `multiline`; may be empty).
    lines: Vec<String>,
    multiline: bool,
    builtin: Option<Builtin>,
}

/// Preprocessor state: it lives for one read of the whole file set, since
/// definitions made in one file apply to every file read after it.
#[derive(Debug)]
pub(crate) struct Preprocessor {
    config_id: Option<String>,
    defs: Vec<Def>,
    /// Index in `defs` of a multi-line definition still collecting lines.
    collecting: Option<usize>,
    random_state: u64,
}

impl Preprocessor {
    pub fn new(config_id: Option<String>) -> Self {
        let builtin = |name: &str, value: Option<&str>, builtin| Def {
            name: name.into(),
            lines: value.map(|v| vec![v.to_string()]).unwrap_or_default(),
            multiline: false,
            builtin,
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        Preprocessor {
            config_id,
            defs: vec![
                builtin("_PWD", None, Some(Builtin::Pwd)),
                builtin("_INSTANCE", None, Some(Builtin::Instance)),
                builtin("_RANDOM", None, Some(Builtin::Random)),
                builtin("_HASH", Some("#"), None),
                builtin("_BANG", Some("!"), None),
            ],
            collecting: None,
            random_state: seed,
        }
    }

    /// Reads one physical line of `file`, pushing the lines it yields.
    pub fn feed(&mut self, raw: Line, file: &Path, sink: &mut Sink, out: &mut Vec<Line>) {
        if let Some(idx) = self.collecting {
            self.continue_definition(idx, raw);
            return;
        }
        self.process(raw, file, sink, out, 0);
    }

    /// A file ended: a multi-line definition does not run into the next.
    pub fn end_file(&mut self) {
        self.collecting = None;
    }

    fn continue_definition(&mut self, idx: usize, mut raw: Line) {
        if raw.chars.is_empty() {
            self.collecting = None;
            return;
        }
        raw.strip();
        if raw.chars.is_empty() {
            // A comment line inside the value: skipped.
            return;
        }
        let mut text = raw.text();
        let more = text.ends_with('\\');
        if more {
            text.pop();
            text.truncate(text.trim_end_matches([' ', '\t']).len());
        } else {
            self.collecting = None;
        }
        if !text.is_empty() {
            self.defs[idx].lines.push(text);
        }
    }

    fn process(
        &mut self,
        mut l: Line,
        file: &Path,
        sink: &mut Sink,
        out: &mut Vec<Line>,
        depth: usize,
    ) {
        if depth > MAX_NESTING {
            sink.error(
                &l.loc(file, 0),
                format!(
                    "expansions nested more than {MAX_NESTING} deep: does a definition use itself?"
                ),
            );
            return;
        }
        l.strip();
        let mut later: Vec<Line> = Vec::new();
        let mut rounds = 0;
        loop {
            if l.chars.is_empty() {
                return;
            }
            if l.chars[0] == '@' && !self.keep_conditional(&mut l) {
                return;
            }
            if l.chars.first() == Some(&'$') && self.define(&l, file, sink) {
                return;
            }
            if l.starts_with("~SEQ") {
                self.sequence(&l, file, sink, out, depth);
                return;
            }
            if l.starts_with("~LST") {
                sink.error(
                    &l.loc(file, 0),
                    "`~LST` is not supported by lbd: the line is ignored (write the lines out or use `~SEQ`)",
                );
                return;
            }
            if l.chars[0] == '~' || !l.chars.contains(&'$') {
                break;
            }
            match self.substitute(&mut l, file, sink) {
                Substituted::Nothing => break,
                Substituted::TooLong => return,
                Substituted::Done(rest) => later.extend(rest),
            }
            l.strip();
            if !(l.chars.first() == Some(&'@') || l.chars.contains(&'$')) {
                break;
            }
            rounds += 1;
            if rounds > MAX_ROUNDS {
                sink.error(
                    &l.loc(file, 0),
                    "substitution does not end: does a definition use itself? The line is ignored",
                );
                return;
            }
        }
        if !l.chars.is_empty() {
            l.newline = true;
            out.push(l);
        }
        for extra in later {
            self.process(extra, file, sink, out, depth + 1);
        }
    }

    /// Applies `@ID` / `@^ID`: false when the line is dropped.
    fn keep_conditional(&self, l: &mut Line) -> bool {
        let reversed = l.chars.get(1) == Some(&'^');
        let start = if reversed { 2 } else { 1 };
        let Some(end) = l.chars[start..].iter().position(|c| is_blank(*c)) else {
            return false;
        };
        let id: String = l.chars[start..start + end].iter().collect();
        let matches = self.config_id.as_deref() == Some(id.as_str());
        if matches == reversed {
            return false;
        }
        l.drain_front(start + end);
        l.strip();
        true
    }

    /// `$NAME=value`: records the definition; false if `l` is not one.
    fn define(&mut self, l: &Line, file: &Path, sink: &mut Sink) -> bool {
        let c = &l.chars;
        if !c.get(1).is_some_and(|c| is_name_start(*c)) {
            return false;
        }
        let Some(eq) = c
            .iter()
            .skip(1)
            .position(|c| !is_name_char(*c))
            .map(|p| p + 1)
        else {
            return false;
        };
        if c[eq] != '=' {
            if is_blank(c[eq]) && c[eq..].iter().find(|c| !is_blank(**c)) == Some(&'=') {
                sink.warn(
                    &l.loc(file, eq),
                    "no blank may come before `=` in a definition: keepalived reads this line as a `$` use, not as `$NAME=value`",
                );
            }
            return false;
        }
        let name: String = c[1..eq].iter().collect();
        let value: String = c[eq + 1..].iter().collect();
        let mut value = value.trim_start_matches([' ', '\t']).to_string();
        let multiline = value.ends_with('\\');
        if multiline {
            value.pop();
            value.truncate(value.trim_end_matches([' ', '\t']).len());
        }
        let def = Def {
            name: name.clone(),
            lines: if multiline && value.is_empty() {
                Vec::new()
            } else {
                vec![value]
            },
            multiline,
            builtin: None,
        };
        let idx = match self.defs.iter().position(|d| d.name == name) {
            Some(i) => {
                self.defs[i] = def;
                i
            }
            None => {
                self.defs.push(def);
                self.defs.len() - 1
            }
        };
        if multiline {
            self.collecting = Some(idx);
        }
        true
    }

    fn substitute(&mut self, l: &mut Line, file: &Path, sink: &mut Sink) -> Substituted {
        let mut found = false;
        let mut rest: Vec<Line> = Vec::new();
        let mut p = 0;
        let mut replaced = 0;
        while p + 1 < l.chars.len() {
            if l.chars[p] != '$' {
                p += 1;
                continue;
            }
            let Some(m) = self.find_use(&l.chars, p) else {
                p += 1;
                continue;
            };
            found = true;
            let def = &self.defs[m.def];
            let (first, more): (String, Vec<String>) = match def.builtin {
                Some(b) => (self.builtin_value(b, m.params.as_deref()), Vec::new()),
                None => match def.lines.split_first() {
                    Some((f, m)) => (f.clone(), m.to_vec()),
                    None => (String::new(), Vec::new()),
                },
            };
            let col = l.cols[p];
            let first_chars: Vec<char> = first.chars().collect();
            let n = first_chars.len();
            l.chars.splice(p..m.end, first_chars);
            l.cols.splice(p..m.end, std::iter::repeat_n(col, n));
            replaced += 1;
            if l.chars.len() > MAX_LINE_CHARS || replaced > MAX_REPLACEMENTS {
                sink.error(
                    &Location::new(file, l.line, col),
                    format!("substitution does not end (over {MAX_REPLACEMENTS} replacements or {MAX_LINE_CHARS} characters): does a definition use itself? The line is ignored"),
                );
                return Substituted::TooLong;
            }
            for text in more {
                let mut extra = Line::raw(l.line, &text, true);
                extra.cols = vec![col; extra.chars.len()];
                extra.end_col = col;
                rest.push(extra);
            }
            if first.trim_start_matches([' ', '\t']).starts_with('~') {
                break;
            }
            // The replacement is read again from `p`, as keepalived does.
        }
        if found {
            Substituted::Done(rest)
        } else {
            Substituted::Nothing
        }
    }

    /// A defined `$NAME` or `${NAME [PARAMS]}` at `chars[p]`.
    fn find_use(&self, chars: &[char], p: usize) -> Option<Use> {
        let braces = chars.get(p + 1) == Some(&'{');
        let start = p + 1 + usize::from(braces);
        if !chars.get(start).is_some_and(|c| is_name_start(*c)) {
            return None;
        }
        let name_end = chars[start..]
            .iter()
            .position(|c| !is_name_char(*c))
            .map_or(chars.len(), |e| start + e);
        let mut params = None;
        let end = if braces {
            let mut q = name_end;
            while q < chars.len() && (chars[q] == ' ' || chars[q].is_ascii_digit()) {
                q += 1;
            }
            let inner: String = chars[name_end..q].iter().collect();
            if !inner.trim().is_empty() {
                if inner.ends_with(' ') {
                    return None;
                }
                params = Some(inner.trim().to_string());
            }
            if chars.get(q) != Some(&'}') {
                return None;
            }
            q + 1
        } else {
            if let Some(c) = chars.get(name_end) {
                if !matches!(c, ' ' | '\t' | ',' | ')') {
                    return None;
                }
            }
            name_end
        };
        let name: String = chars[start..name_end].iter().collect();
        let at_line_end = end == chars.len();
        let def = self
            .defs
            .iter()
            .position(|d| d.name == name && (at_line_end || !d.multiline))?;
        if params.is_some() && self.defs[def].builtin != Some(Builtin::Random) {
            return None;
        }
        Some(Use { def, end, params })
    }

    fn builtin_value(&mut self, b: Builtin, params: Option<&str>) -> String {
        match b {
            Builtin::Pwd => std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            Builtin::Instance => self.config_id.clone().unwrap_or_default(),
            Builtin::Random => {
                let mut nums = params
                    .unwrap_or("")
                    .split_whitespace()
                    .filter_map(|n| n.parse::<u64>().ok());
                let (min, max) = match (nums.next(), nums.next()) {
                    (Some(a), Some(b)) => (a, b),
                    (Some(a), None) => (a, 32767),
                    _ => (0, 32767),
                };
                // xorshift: the value only has to vary, as keepalived's
                // random() does.
                let mut x = self.random_state;
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                self.random_state = x;
                let span = max.saturating_sub(min).saturating_add(1);
                (min + x % span).to_string()
            }
        }
    }

    /// `~SEQ(NAME, ...) text`: the text once per number.
    fn sequence(
        &mut self,
        l: &Line,
        file: &Path,
        sink: &mut Sink,
        out: &mut Vec<Line>,
        depth: usize,
    ) {
        let loc = l.loc(file, 0);
        let Some(seq) = parse_seq(&l.chars, |s| self.expand_simple(s)) else {
            sink.error(
                &loc,
                "invalid `~SEQ`: write `~SEQ(NAME, END)`, `~SEQ(NAME, START, END)` or `~SEQ(NAME, START, STEP, END)` then the line to repeat; the line is ignored",
            );
            return;
        };
        let count = (i128::from(seq.end) - i128::from(seq.start)) / i128::from(seq.step) + 1;
        if count > MAX_SEQ_LINES {
            sink.error(
                &loc,
                format!("`~SEQ` would write {count} lines (at most {MAX_SEQ_LINES}); the line is ignored"),
            );
            return;
        }
        let mut text = l.clone();
        text.drain_front(seq.text_start.min(text.chars.len()));
        let mut v = seq.start;
        loop {
            let value = if seq.hex {
                format!("{v:x}")
            } else {
                v.to_string()
            };
            let def = Def {
                name: seq.var.clone(),
                lines: vec![value],
                multiline: false,
                builtin: None,
            };
            match self.defs.iter().position(|d| d.name == seq.var) {
                Some(i) => self.defs[i] = def,
                None => self.defs.push(def),
            }
            self.process(text.clone(), file, sink, out, depth + 1);
            match v.checked_add(seq.step) {
                Some(n) if (seq.step > 0 && n <= seq.end) || (seq.step < 0 && n >= seq.end) => {
                    v = n
                }
                _ => break,
            }
        }
    }

    /// Replaces single-line definitions in `s` (for `~SEQ`'s numbers).
    fn expand_simple(&mut self, s: &str) -> String {
        let mut l = Line::raw(0, s, false);
        let mut sink = Sink::default();
        for _ in 0..MAX_ROUNDS {
            match self.substitute(&mut l, Path::new(""), &mut sink) {
                Substituted::Done(rest) if rest.is_empty() => {}
                _ => break,
            }
        }
        l.text()
    }
}

enum Substituted {
    Nothing,
    TooLong,
    /// Replaced; the later lines of multi-line values used at the end.
    Done(Vec<Line>),
}

struct Use {
    def: usize,
    /// Index just past the use.
    end: usize,
    params: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
struct Seq {
    var: String,
    hex: bool,
    start: i64,
    step: i64,
    end: i64,
    /// Where the repeated text starts in the line.
    text_start: usize,
}

/// Parses `~SEQ[x](VAR, a[, b[, c]])` as keepalived does.
fn parse_seq(chars: &[char], mut expand: impl FnMut(&str) -> String) -> Option<Seq> {
    let line: String = chars.iter().collect();
    let mut rest = line.strip_prefix("~SEQ")?;
    let hex = rest.starts_with('x');
    if hex {
        rest = &rest[1..];
    }
    let rest = rest.trim_start_matches([' ', '\t']).strip_prefix('(')?;
    let close = rest.find(')')?;
    let inside = &rest[..close];
    let after = &rest[close + 1..];
    let (var, nums) = inside.split_once(',')?;
    let var = var.trim_matches([' ', '\t']).to_string();
    if var.is_empty() || !var.chars().all(is_name_char) {
        return None;
    }
    let nums: Vec<i64> = expand(nums)
        .split(',')
        .map(|n| parse_c_long(n.trim_matches([' ', '\t'])))
        .collect::<Option<_>>()?;
    let (start, step, end) = match nums[..] {
        [end] => (
            if end < 0 { -1 } else { 1 },
            if end < 1 { -1 } else { 1 },
            end,
        ),
        [start, end] => (start, if start <= end { 1 } else { -1 }, end),
        [start, step, end] => {
            if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
                return None;
            }
            (start, step, end)
        }
        _ => return None,
    };
    if hex && (start < 0 || end < 0) {
        return None;
    }
    let skipped = after.len() - after.trim_start_matches([' ', '\t']).len();
    let text_start = line[..line.len() - after.len() + skipped].chars().count();
    Some(Seq {
        var,
        hex,
        start,
        step,
        end,
        text_start,
    })
}

/// A number as C's `strtol(.., 0)` reads a whole word: `0x` hex, a leading
/// `0` octal, else decimal.
fn parse_c_long(s: &str) -> Option<i64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(h, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

/// The configuration id keepalived uses without `-i`: the host name up to
/// its first `.`.
pub(crate) fn default_config_id() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    let short = name.split('.').next().unwrap_or(name);
    (!short.is_empty()).then(|| short.to_string())
}

/// Splits a file's text into its physical lines (`\n`, `\r\n` or `\r`).
pub(crate) fn split_lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut line = 1u32;
    let mut rest = text;
    while !rest.is_empty() {
        let (this, next, newline) = match rest.find(['\n', '\r']) {
            Some(i) => {
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                (&rest[..i], &rest[i + skip..], true)
            }
            None => (rest, "", false),
        };
        out.push(Line::raw(line, this, newline));
        line += 1;
        rest = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: Option<&str>, text: &str) -> (Vec<(u32, String, u32)>, Vec<String>) {
        let mut pp = Preprocessor::new(id.map(String::from));
        let mut sink = Sink::default();
        let mut out = Vec::new();
        for l in split_lines(text) {
            pp.feed(l, Path::new("t.conf"), &mut sink, &mut out);
        }
        let lines = out
            .iter()
            .map(|l| (l.line, l.text(), l.cols.first().copied().unwrap_or(0)))
            .collect();
        let diags = sink.finish().iter().map(|d| d.to_string()).collect();
        (lines, diags)
    }

    fn texts(id: Option<&str>, text: &str) -> Vec<String> {
        run(id, text).0.into_iter().map(|l| l.1).collect()
    }

    #[test]
    fn conditional_lines_follow_the_config_id() {
        let text = "@lb1 priority 150\n@lb2 priority 100\n@^lb1 state BACKUP\n  @lb1   nopriority\n@lb1\nplain\n";
        assert_eq!(
            texts(Some("lb1"), text),
            ["priority 150", "nopriority", "plain"]
        );
        assert_eq!(
            texts(Some("lb2"), text),
            ["priority 100", "state BACKUP", "plain"]
        );
        assert_eq!(texts(None, text), ["state BACKUP", "plain"]);
    }

    #[test]
    fn definitions_and_uses() {
        let text = "$VIP=192.0.2.1 # the address\n$PORT = 80\n$VIP $PORT\n${VIP}/24 dev x\n$VIPS,$UNDEF $VIPX\n";
        let (lines, diags) = run(None, text);
        let t: Vec<&str> = lines.iter().map(|l| l.1.as_str()).collect();
        // `$PORT = 80` is not a definition (keepalived allows no blank
        // before `=`), so `$PORT` stays as written.
        assert_eq!(
            t,
            [
                "$PORT = 80",
                "192.0.2.1 $PORT",
                "192.0.2.1/24 dev x",
                "$VIPS,$UNDEF $VIPX"
            ]
        );
        assert_eq!(lines[1], (3, "192.0.2.1 $PORT".into(), 1));
        assert_eq!(diags, ["t.conf:2:6: warning: no blank may come before `=` in a definition: keepalived reads this line as a `$` use, not as `$NAME=value`"]);
    }

    #[test]
    fn uses_are_read_again_and_columns_point_at_the_dollar() {
        let text = "$A=$B x\n$B=@lb1 y\n  key $A\n$A\n";
        let (lines, _) = run(Some("lb1"), text);
        assert_eq!(lines[0], (3, "key @lb1 y x".into(), 3));
        // A line that becomes `@lb1 ...` is conditional again.
        assert_eq!(lines[1], (4, "y x".into(), 1));
    }

    #[test]
    fn multiline_definitions_expand_to_lines_at_the_end_of_a_line() {
        let text = "$BLOCK=virtual_ipaddress { \\\n  10.0.0.1 \\\n\n# comment\n 10.0.0.2 \\\n}\n\n$BLOCK\nx $BLOCK y\n";
        // The empty line ends the definition after `10.0.0.1`.
        let t = texts(None, text);
        assert_eq!(
            t,
            [
                "10.0.0.2 \\",
                "}",
                "virtual_ipaddress {",
                "10.0.0.1",
                "x $BLOCK y"
            ]
        );
    }

    #[test]
    fn builtins() {
        let t = texts(
            Some("host1"),
            "a $_INSTANCE\nb \"${_HASH}\"\nc ${_RANDOM 5 5}\n",
        );
        assert_eq!(t, ["a host1", "b \"#\"", "c 5"]);
    }

    #[test]
    fn self_reference_is_a_located_error() {
        let (lines, diags) = run(None, "$A=x $A\nkey $A\nnext\n");
        assert_eq!(lines.last().unwrap().1, "next");
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(
            diags[0].starts_with("t.conf:2:5: error: substitution does not end"),
            "{diags:?}"
        );
    }

    #[test]
    fn seq_repeats_a_line() {
        let t = texts(
            None,
            "$N=3\n~SEQ(i, 1, $N) 10.0.0.${i}/24\n~SEQx(j,9,11) ::$j\n~SEQ(k,2) k$k\n",
        );
        assert_eq!(
            t,
            [
                "10.0.0.1/24",
                "10.0.0.2/24",
                "10.0.0.3/24",
                "::9",
                "::a",
                "::b",
                "k1",
                "k2"
            ]
        );
        let (_, d) = run(None, "~SEQ(i, 1, 0, 3) x\n~SEQ i x\n");
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(
            d[0].starts_with("t.conf:1:1: error: invalid `~SEQ`"),
            "{d:?}"
        );
    }

    #[test]
    fn c_numbers() {
        assert_eq!(parse_c_long("0x10"), Some(16));
        assert_eq!(parse_c_long("010"), Some(8));
        assert_eq!(parse_c_long("-3"), Some(-3));
        assert_eq!(parse_c_long("x"), None);
    }
}
