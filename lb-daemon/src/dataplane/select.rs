//! `--dataplane`: which tier forwards, and in `auto` the order in which
//! tiers are tried (XDP native, XDP SKB, TC, IPVS), each skip logged with
//! its reason.

use std::future::Future;

use tracing::{info, warn};

use super::{ipvs::IpvsDataplane, Dataplane, DataplaneError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Tier {
    /// XDP (native, then SKB mode), then TC, then IPVS: the first that works.
    #[default]
    Auto,
    Xdp,
    Tc,
    Ipvs,
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tier::Auto => "auto",
            Tier::Xdp => "xdp",
            Tier::Tc => "tc",
            Tier::Ipvs => "ipvs",
        })
    }
}

fn tc() -> Result<Box<dyn Dataplane>, DataplaneError> {
    Err(DataplaneError::Unavailable {
        tier: "tc".into(),
        reason: "the TC tier is not available yet".into(),
    })
}

fn ipvs() -> Result<Box<dyn Dataplane>, DataplaneError> {
    Ok(Box::new(IpvsDataplane::open()?))
}

/// Opens the tier asked for. `xdp` sets up the XDP tier (load, attach in
/// the configured mode, which itself falls back from native to SKB).
pub async fn open<F, Fut>(tier: Tier, xdp: F) -> anyhow::Result<Box<dyn Dataplane>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<Box<dyn Dataplane>>>,
{
    match tier {
        Tier::Xdp => xdp().await,
        Tier::Tc => Ok(tc()?),
        Tier::Ipvs => Ok(ipvs()?),
        Tier::Auto => {
            let mut skipped = Vec::new();
            match xdp().await {
                Ok(d) => return Ok(d),
                Err(e) => {
                    warn!("data plane auto: XDP skipped: {e:#}");
                    skipped.push(format!("xdp: {e:#}"));
                }
            }
            match tc() {
                Ok(d) => return Ok(d),
                Err(e) => {
                    warn!("data plane auto: TC skipped: {e}");
                    skipped.push(e.to_string());
                }
            }
            match ipvs() {
                Ok(d) => {
                    info!("data plane auto: using IPVS");
                    Ok(d)
                }
                Err(e) => {
                    skipped.push(e.to_string());
                    anyhow::bail!("no data plane can work here: {}", skipped.join("; "))
                }
            }
        }
    }
}
