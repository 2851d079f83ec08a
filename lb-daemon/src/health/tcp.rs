//! TCP_CHECK: up when a connection opens within `connect_timeout`.

use tokio::time::timeout;

use super::core::Outcome;
use super::net;
use super::plan::ProbeSpec;

pub async fn probe(spec: &ProbeSpec) -> Outcome {
    match timeout(spec.connect_timeout, net::connect(spec)).await {
        Ok(Ok(_stream)) => Outcome::up(),
        Ok(Err(e)) => Outcome::down(net::reason("connect to", spec.target, &e)),
        Err(_) => Outcome::down(format!(
            "connect to {}: no answer within {:?}",
            spec.target, spec.connect_timeout
        )),
    }
}
