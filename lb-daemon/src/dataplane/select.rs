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

fn ipvs() -> Result<Box<dyn Dataplane>, DataplaneError> {
    Ok(Box::new(IpvsDataplane::open()?))
}

/// The BPF program attached at XDP or at TC (clsact ingress).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Xdp,
    Tc,
}

/// Opens the tier asked for. `bpf` sets up the BPF tier at a hook (load,
/// attach; XDP itself falls back from native to SKB mode).
pub async fn open<F, Fut>(tier: Tier, bpf: F) -> anyhow::Result<Box<dyn Dataplane>>
where
    F: Fn(Hook) -> Fut,
    Fut: Future<Output = anyhow::Result<Box<dyn Dataplane>>>,
{
    match tier {
        Tier::Xdp => bpf(Hook::Xdp).await,
        Tier::Tc => bpf(Hook::Tc).await,
        Tier::Ipvs => Ok(ipvs()?),
        Tier::Auto => {
            let mut skipped = Vec::new();
            match bpf(Hook::Xdp).await {
                Ok(d) => return Ok(d),
                Err(e) => {
                    warn!("data plane auto: XDP skipped: {e:#}");
                    skipped.push(format!("xdp: {e:#}"));
                }
            }
            match bpf(Hook::Tc).await {
                Ok(d) => return Ok(d),
                Err(e) => {
                    warn!("data plane auto: TC skipped: {e:#}");
                    skipped.push(format!("tc: {e:#}"));
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
