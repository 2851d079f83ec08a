//! TCP_CHECK: up when a connection opens within `connect_timeout`.

use tokio::time::timeout;

use super::core::Outcome;
use super::plan::ProbeSpec;
use super::socket;

pub async fn probe(spec: &ProbeSpec) -> Outcome {
    match timeout(spec.connect_timeout, socket::connect(spec)).await {
        Ok(Ok(_stream)) => Outcome::up(),
        Ok(Err(e)) => socket::failed("connect to", spec.target, &e),
        Err(_) => Outcome::down(format!(
            "connect to {}: no answer within {:?}",
            spec.target, spec.connect_timeout
        )),
    }
}
