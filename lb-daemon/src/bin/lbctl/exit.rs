//! Exit status, for scripts (also in `lbctl --help` and docs/lbctl.md).

use lb_daemon::control::{client::ClientError, protocol::ErrorCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The request was refused or failed.
    Failed = 1,
    // 2: bad command line (clap's own status).
    /// lbd is not reachable and there is nothing to fall back to.
    Unreachable = 3,
    PermissionDenied = 4,
    /// No such service or backend.
    NotFound = 5,
}

#[derive(Debug)]
pub struct Failure {
    pub code: Code,
    pub message: String,
}

impl Failure {
    pub fn new(code: Code, message: impl std::fmt::Display) -> Self {
        Self {
            code,
            message: message.to_string(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        let code = match &e {
            ClientError::NotRunning { .. } | ClientError::NoAnswer { .. } => Code::Unreachable,
            ClientError::PermissionDenied { .. } => Code::PermissionDenied,
            ClientError::Refused(body) => match body.code {
                ErrorCode::NotFound => Code::NotFound,
                ErrorCode::PermissionDenied => Code::PermissionDenied,
                _ => Code::Failed,
            },
            ClientError::Io(_) | ClientError::Protocol(_) => Code::Failed,
        };
        Failure::new(code, e)
    }
}
