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
    /// lbd took the request but did not answer in time (hung or
    /// overloaded). The request stays queued in lbd: it may still be
    /// carried out when lbd catches up.
    #[error("lbd did not answer on {path} within {waited:?} (hung or overloaded); the request was sent and may still be carried out when lbd catches up")]
    NoAnswer { path: String, waited: Duration },
    #[error("talking to lbd: {0}")]
    Io(#[from] io::Error),
    #[error("lbd sent something that is not a response: {0}")]
    Protocol(String),
    /// lbd answered with an error.
    #[error("{}", .0.message)]
    Refused(ErrorBody),
}

/// Sends `command` and waits up to `timeout` for the answer.
pub fn request<T: DeserializeOwned>(
    socket: &Path,
    command: Command,
    timeout: Duration,
) -> Result<T, ClientError> {
    let path = socket.display().to_string();
    let mut stream = UnixStream::connect(socket).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => ClientError::PermissionDenied { path: path.clone() },
        _ => ClientError::NotRunning {
            path: path.clone(),
            source: e,
        },
    })?;
    stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
    stream.set_write_timeout(Some(timeout.max(Duration::from_millis(1))))?;
    let mut line = serde_json::to_vec(&Request::new(command))
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push(b'\n');
    // lbd may answer and close before reading (a permission denial): the
    // write then fails, but its answer is there to read.
    let sent = stream.write_all(&line);
    let mut answer = String::new();
    let read = BufReader::new(&stream).read_line(&mut answer);
    match (sent, read) {
        (_, Ok(n)) if n > 0 => {}
        (Err(e), _) => return Err(e.into()),
        (Ok(()), Err(e))
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            return Err(ClientError::NoAnswer {
                path,
                waited: timeout,
            })
        }
        (Ok(()), Err(e)) => return Err(e.into()),
        (Ok(()), Ok(_)) => {
            return Err(ClientError::Protocol(
                "connection closed without an answer".into(),
            ))
        }
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
