//! SMTP_CHECK: the server's banner must be a 220 reply and `HELO` must be
//! answered with 250; the session then ends with `QUIT`. The whole exchange
//! must end within `connect_timeout`.

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::time::timeout;

use super::core::Outcome;
use super::plan::ProbeSpec;
use super::socket;
use crate::config::CheckerKind;

/// Longest reply line read.
const MAX_LINE: usize = 4096;

pub async fn probe(spec: &ProbeSpec) -> Outcome {
    let CheckerKind::Smtp(s) = &spec.kind else {
        return Outcome::down("not an SMTP_CHECK");
    };
    match timeout(spec.connect_timeout, session(spec, &s.helo_name)).await {
        Ok(Ok(())) => Outcome::up(),
        Ok(Err(reason)) => Outcome::down(reason),
        Err(_) => Outcome::down(format!(
            "SMTP with {}: no complete exchange within {:?}",
            spec.target, spec.connect_timeout
        )),
    }
}

async fn session(spec: &ProbeSpec, helo: &str) -> Result<(), String> {
    let stream = socket::connect(spec)
        .await
        .map_err(|e| socket::reason("connect to", spec.target, &e))?;
    let mut s = BufReader::new(stream);
    expect(&mut s, 220, "banner").await?;
    s.get_mut()
        .write_all(format!("HELO {helo}\r\n").as_bytes())
        .await
        .map_err(|e| format!("sending HELO: {e}"))?;
    expect(&mut s, 250, "HELO").await?;
    let _ = s.get_mut().write_all(b"QUIT\r\n").await;
    Ok(())
}

/// Reads one reply (all its `NNN-` continuation lines) and checks its code.
async fn expect<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    want: u16,
    what: &str,
) -> Result<(), String> {
    loop {
        let mut line = String::new();
        let n = (&mut *r)
            .take(MAX_LINE as u64)
            .read_line(&mut line)
            .await
            .map_err(|e| format!("reading the {what} reply: {e}"))?;
        if n == 0 {
            return Err(format!("connection closed before the {what} reply"));
        }
        let code: Option<u16> = line.get(..3).and_then(|c| c.parse().ok());
        let Some(code) = code else {
            return Err(format!(
                "not an SMTP reply to {what}: {:?}",
                line.trim_end()
            ));
        };
        if line.as_bytes().get(3) == Some(&b'-') {
            continue;
        }
        if code != want {
            return Err(format!(
                "{what} reply {:?}, expected {want}",
                line.trim_end()
            ));
        }
        return Ok(());
    }
}
