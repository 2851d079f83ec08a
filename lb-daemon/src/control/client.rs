//! The client side of the control protocol (lbctl): blocking, one
//! connection per request.

use std::{
    io::{self, BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use serde::de::DeserializeOwned;

use super::protocol::{Command, ErrorBody, Request, Response};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody listens there (lbd is down).
    #[error("lbd is not running (nothing answers on {path}): {source}")]
    NotRunning { path: String, source: io::Error },
    #[error("permission denied on {path}: root or the control group only")]
    PermissionDenied { path: String },
    #[error("talking to lbd: {0}")]
    Io(#[from] io::Error),
    #[error("lbd sent something that is not a response: {0}")]
    Protocol(String),
    /// lbd answered with an error.
    #[error("{}", .0.message)]
    Refused(ErrorBody),
}

pub fn request<T: DeserializeOwned>(socket: &Path, command: Command) -> Result<T, ClientError> {
    let path = socket.display().to_string();
    let mut stream = UnixStream::connect(socket).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => ClientError::PermissionDenied { path: path.clone() },
        _ => ClientError::NotRunning {
            path: path.clone(),
            source: e,
        },
    })?;
    // Reload waits for lbd to apply the configuration.
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut line = serde_json::to_vec(&Request::new(command))
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(&stream).read_line(&mut answer)?;
    if answer.is_empty() {
        return Err(ClientError::Protocol(
            "connection closed without an answer".into(),
        ));
    }
    let response: Response =
        serde_json::from_str(&answer).map_err(|e| ClientError::Protocol(e.to_string()))?;
    if !response.ok {
        return Err(ClientError::Refused(response.error.unwrap_or(ErrorBody {
            code: super::protocol::ErrorCode::Internal,
            message: "request failed".into(),
        })));
    }
    let result = response.result.unwrap_or(serde_json::Value::Null);
    serde_json::from_value(result).map_err(|e| ClientError::Protocol(e.to_string()))
}
