//! Diagnostics: every problem found in a configuration is collected (never
//! stop at the first one) and reported as `PATH:LINE:COL: severity: message`,
//! the format editors and CI logs already understand.

use std::fmt;
use std::path::{Path, PathBuf};

use super::model::Location;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// What an error does to a start or a reload. keepalived is the contract:
/// it runs a file with mistakes in it, doing something definite with the
/// bad part, and refuses only a few (see [`crate::config::Mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ErrorKind {
    /// A bad value or statement: the bad part is skipped or falls back to
    /// what keepalived uses, and the rest runs.
    #[default]
    Value,
    /// The file's shape is broken (braces, an unreadable file or include,
    /// binary garbage): keepalived runs what it can, but a reload refuses
    /// it, as it is most likely a half-written file.
    Structural,
    /// keepalived does not start with this (an instance without
    /// `virtual_router_id`, two instances on one VRID...): neither does lbd.
    Fatal,
}

/// One finding, pointing at a 1-based line and column of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// For errors: what the error does to a start or a reload.
    pub kind: ErrorKind,
    pub file: PathBuf,
    pub line: u32,
    pub col: u32,
    pub message: String,
}

impl Diagnostic {
    pub fn at(severity: Severity, loc: &Location, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            kind: ErrorKind::Value,
            file: loc.file.clone(),
            line: loc.line,
            col: loc.col,
            message: message.into(),
        }
    }

    /// An error of `kind`.
    pub fn error_of(kind: ErrorKind, loc: &Location, message: impl Into<String>) -> Self {
        Diagnostic {
            kind,
            ..Diagnostic::at(Severity::Error, loc, message)
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.severity,
            self.message
        )
    }
}

/// All the diagnostics of a failed load: errors and the warnings found with
/// them, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Collector threaded through every parsing stage.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    diags: Vec<Diagnostic>,
    /// Files in the order they were first read, so diagnostics can be sorted
    /// into reading order even though sections are built in several passes.
    file_order: Vec<PathBuf>,
}

impl Sink {
    pub fn error(&mut self, loc: &Location, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::at(Severity::Error, loc, message));
    }

    /// An error in the file's shape: refused on reload (see [`ErrorKind`]).
    pub fn structural(&mut self, loc: &Location, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::error_of(ErrorKind::Structural, loc, message));
    }

    /// An error keepalived does not start with (see [`ErrorKind`]).
    pub fn fatal(&mut self, loc: &Location, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::error_of(ErrorKind::Fatal, loc, message));
    }

    pub fn warn(&mut self, loc: &Location, message: impl Into<String>) {
        self.diags
            .push(Diagnostic::at(Severity::Warning, loc, message));
    }

    /// Error about a whole file (it could not be read at all).
    pub fn file_error(&mut self, file: &Path, message: impl Into<String>) {
        self.structural(&Location::new(file, 1, 1), message);
    }

    pub fn note_file(&mut self, file: &Path) {
        if !self.file_order.iter().any(|f| f == file) {
            self.file_order.push(file.to_path_buf());
        }
    }

    /// Diagnostics sorted by file (reading order), line and column; the sort
    /// is stable so findings at one spot keep the order they were made in.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        let order = self.file_order;
        let rank = |p: &Path| order.iter().position(|f| f == p).unwrap_or(usize::MAX);
        self.diags.sort_by_key(|d| (rank(&d.file), d.line, d.col));
        self.diags
    }
}
