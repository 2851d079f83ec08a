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

/// Why no data plane could be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError<E: std::error::Error + 'static> {
    /// The BPF tier asked for (`--dataplane xdp` or `tc`).
    #[error(transparent)]
    Bpf(E),
    /// The IPVS tier asked for (`--dataplane ipvs`).
    #[error(transparent)]
    Ipvs(DataplaneError),
    /// `auto`: every tier was tried and skipped.
    #[error(
        "no data plane can work here: xdp: {}; tc: {}; {ipvs}",
        Chain(xdp),
        Chain(tc)
    )]
    NoTier {
        xdp: E,
        tc: E,
        #[source]
        ipvs: DataplaneError,
    },
}

/// An error with its causes, `: `-separated (as anyhow's `{:#}`), so a
/// skipped tier's log line says why down to the system call.
struct Chain<'a>(&'a dyn std::error::Error);

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

/// Opens the tier asked for. `bpf` sets up the BPF tier at a hook (load,
/// attach; XDP itself falls back from native to SKB mode).
pub async fn open<F, Fut, E>(tier: Tier, bpf: F) -> Result<Box<dyn Dataplane>, OpenError<E>>
where
    F: Fn(Hook) -> Fut,
    Fut: Future<Output = Result<Box<dyn Dataplane>, E>>,
    E: std::error::Error + 'static,
{
    match tier {
        Tier::Xdp => bpf(Hook::Xdp).await.map_err(OpenError::Bpf),
        Tier::Tc => bpf(Hook::Tc).await.map_err(OpenError::Bpf),
        Tier::Ipvs => ipvs().map_err(OpenError::Ipvs),
        Tier::Auto => {
            let xdp = match bpf(Hook::Xdp).await {
                Ok(d) => return Ok(d),
                Err(e) => {
                    warn!("data plane auto: XDP skipped: {}", Chain(&e));
                    e
                }
            };
            let tc = match bpf(Hook::Tc).await {
                Ok(d) => return Ok(d),
                Err(e) => {
                    warn!("data plane auto: TC skipped: {}", Chain(&e));
                    e
                }
            };
            match ipvs() {
                Ok(d) => {
                    info!("data plane auto: using IPVS");
                    Ok(d)
                }
                Err(ipvs) => Err(OpenError::NoTier { xdp, tc, ipvs }),
            }
        }
    }
}
