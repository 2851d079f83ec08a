//! Attaching the balancer at XDP or at TC ingress, and taking over the link
//! a previous lbd left pinned: the kernel swaps the new program into that
//! link atomically, and not a packet goes unhandled.

use std::path::{Path, PathBuf};

use aya::programs::{
    links::{FdLink, LinkError, PinnedLink},
    tc::{self, SchedClassifierLink, TcAttachType},
    xdp::XdpLink,
    ProgramError, XdpMode,
};
use tracing::{info, warn};

use super::{load::xdp_program, XdpDataplane};
use crate::{
    dataplane::{select::Hook, DataplaneError},
    net::Interface,
};

/// Which XDP attach mode to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    /// Native (driver) mode, falling back to generic (SKB) mode with a warning.
    Auto,
    Native,
    Skb,
}

/// An interface the program is attached to.
#[derive(Debug)]
pub(super) struct Attachment {
    pub(super) iface: Interface,
    /// `native`, `skb`, `tc`, or `pinned` for an XDP link taken over.
    pub(super) mode: &'static str,
}

/// What differs between the two hooks for their links.
impl Hook {
    /// Where the link of this hook on `iface` is pinned.
    pub(super) fn link_pin(self, dir: &Path, iface: &str) -> PathBuf {
        dir.join(match self {
            Hook::Xdp => format!("link_{iface}"),
            Hook::Tc => format!("tclink_{iface}"),
        })
    }

    /// The hook, in logs.
    fn name(self) -> &'static str {
        match self {
            Hook::Xdp => "XDP",
            Hook::Tc => "TC",
        }
    }

    /// An error of this hook's program.
    fn program_error(self) -> impl Fn(ProgramError) -> DataplaneError {
        let name = match self {
            Hook::Xdp => lb_common::XDP_PROGRAM,
            Hook::Tc => lb_common::TC_PROGRAM,
        };
        move |source| DataplaneError::Program { name, source }
    }

    /// How an attachment taken over from a pin is shown.
    fn taken_mode(self) -> &'static str {
        match self {
            Hook::Xdp => "pinned",
            Hook::Tc => "tc",
        }
    }
}

/// Why a link could not be given to this lbd's program.
#[derive(Debug, thiserror::Error)]
enum RelinkError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Program(#[from] ProgramError),
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
}

/// A link attached anew: how, and (when it is to be pinned) the link,
/// taken out of aya so that it outlives this lbd.
type Fresh = (&'static str, Option<FdLink>);

impl XdpDataplane {
    /// Attaches the program to `iface` and records its MAC as the source of
    /// the frames sent back out of it. With a pin path, a link a previous
    /// daemon left there is taken over: the new program replaces the old
    /// one atomically, and not a packet goes unhandled.
    pub fn attach(&mut self, iface: &Interface, mode: AttachMode) -> Result<(), DataplaneError> {
        self.attach_at(Hook::Xdp, iface, |dp, pin| dp.attach_xdp(iface, mode, pin))
    }

    /// Attaches the same balancer at TC ingress (clsact) instead of XDP, for
    /// interfaces where XDP cannot serve. Its link is pinned (and taken over
    /// by the next lbd) where the kernel makes it a bpf_link (TCX, 6.6+);
    /// elsewhere a restart re-attaches.
    pub fn attach_tc(&mut self, iface: &Interface) -> Result<(), DataplaneError> {
        self.attach_at(Hook::Tc, iface, |dp, pin| dp.attach_tc_ingress(iface, pin))
    }

    /// Interfaces the program is attached to, with their mode (`native`,
    /// `skb`, `tc`, or `pinned` for a link taken over from a previous lbd).
    pub fn attached(&self) -> Vec<(String, &'static str)> {
        self.attachments
            .iter()
            .map(|a| (a.iface.name.clone(), a.mode))
            .collect()
    }

    /// Takes over the pinned link of `hook` on `iface`, or else attaches
    /// anew with `fresh` (told where to pin) and pins what it gives back.
    fn attach_at(
        &mut self,
        hook: Hook,
        iface: &Interface,
        fresh: impl FnOnce(&mut Self, Option<&Path>) -> Result<Fresh, DataplaneError>,
    ) -> Result<(), DataplaneError> {
        self.set_interface(iface)?;
        let pin = self
            .pin_path
            .as_ref()
            .map(|d| hook.link_pin(d, &iface.name));
        if let Some(pin) = pin.as_ref().filter(|p| p.exists()) {
            match self.take_over(hook, pin) {
                Ok(()) => {
                    info!(iface = %iface.name, "took over the {} link pinned by a previous lbd", hook.name());
                    return self.attached_as(iface, hook.taken_mode());
                }
                Err(e) => {
                    warn!(iface = %iface.name, "cannot take over the pinned {} link ({e}); attaching anew", hook.name());
                    let _ = std::fs::remove_file(pin);
                }
            }
        }
        let (mode, link) = fresh(self, pin.as_deref())?;
        if let (Some(pin), Some(link)) = (pin, link) {
            self.pin_link(hook, link, &pin)?;
        }
        match hook {
            Hook::Xdp => {
                info!(iface = %iface.name, ifindex = iface.index, mode, "XDP attached")
            }
            Hook::Tc => {
                info!(iface = %iface.name, ifindex = iface.index, "TC attached (clsact ingress)")
            }
        }
        self.attached_as(iface, mode)
    }

    /// Records `iface` as attached; `Ok` for the caller to return.
    fn attached_as(&mut self, iface: &Interface, mode: &'static str) -> Result<(), DataplaneError> {
        self.attachments.push(Attachment {
            iface: iface.clone(),
            mode,
        });
        Ok(())
    }

    /// Gives the link pinned at `pin` to this lbd's program.
    fn take_over(&mut self, hook: Hook, pin: &Path) -> Result<(), RelinkError> {
        let pinned = PinnedLink::from_pin(pin)?;
        self.relink(hook, FdLink::from(pinned))
    }

    /// Pins a link just made, and gives it to the program again: kept as
    /// ours, dropping it (without `--on-exit keep`) still detaches.
    fn pin_link(&mut self, hook: Hook, link: FdLink, pin: &Path) -> Result<(), DataplaneError> {
        let pinned = link.pin(pin).map_err(|e| pin_error(pin, &e))?;
        self.relink(hook, FdLink::from(pinned))
            .map_err(|e| match e {
                RelinkError::Program(e) => hook.program_error()(e),
                RelinkError::Dataplane(e) => e,
                RelinkError::Link(e) => pin_error(pin, &e),
            })
    }

    /// Puts this lbd's program for `hook` into the link `fd`.
    fn relink(&mut self, hook: Hook, fd: FdLink) -> Result<(), RelinkError> {
        match hook {
            Hook::Xdp => {
                let link = XdpLink::try_from(fd)?;
                xdp_program(&mut self.ebpf)?.attach_to_link(link)?;
            }
            Hook::Tc => {
                let link = SchedClassifierLink::try_from(fd)?;
                self.tc_program()?.attach_to_link(link)?;
            }
        }
        Ok(())
    }

    /// Attaches at XDP in `mode`; with `pin`, the link comes back to be
    /// pinned.
    fn attach_xdp(
        &mut self,
        iface: &Interface,
        mode: AttachMode,
        pin: Option<&Path>,
    ) -> Result<Fresh, DataplaneError> {
        let program = xdp_program(&mut self.ebpf)?;
        let attach = |program: &mut aya::programs::Xdp, mode| {
            program
                .attach_to_if_index(iface.index, mode)
                .map_err(|e| attach_error(iface, &e))
        };
        let (link, mode_name) = match mode {
            AttachMode::Native => (attach(program, XdpMode::Driver)?, "native"),
            AttachMode::Skb => (attach(program, XdpMode::Skb)?, "skb"),
            AttachMode::Auto => match attach(program, XdpMode::Driver) {
                Ok(link) => (link, "native"),
                Err(e) => {
                    warn!(iface = %iface.name, error = %e, "native XDP unavailable, using generic (SKB) mode");
                    (attach(program, XdpMode::Skb)?, "skb")
                }
            },
        };
        let Some(pin) = pin else {
            return Ok((mode_name, None));
        };
        let owned = program.take_link(link).map_err(Hook::Xdp.program_error())?;
        let fd = FdLink::try_from(owned).map_err(|e| pin_error(pin, &e))?;
        Ok((mode_name, Some(fd)))
    }

    /// Attaches at TC ingress, through a clsact qdisc; with `pin`, the link
    /// comes back to be pinned when the kernel made it a bpf_link.
    fn attach_tc_ingress(
        &mut self,
        iface: &Interface,
        pin: Option<&Path>,
    ) -> Result<Fresh, DataplaneError> {
        // An existing clsact qdisc is fine.
        let _ = tc::qdisc_add_clsact(&iface.name);
        let prog = self.tc_program()?;
        let link = prog
            .attach(&iface.name, TcAttachType::Ingress)
            .map_err(|e| attach_error(iface, &e))?;
        // Pinned when the kernel makes it a bpf_link (TCX, 6.6+, which aya
        // then uses); older kernels attach through netlink, and a restart
        // re-attaches (taking a netlink link out of aya would detach it).
        let tcx = aya::util::KernelVersion::current()
            .map(|v| v >= aya::util::KernelVersion::new(6, 6, 0))
            .unwrap_or(false);
        if pin.is_none() || !tcx {
            return Ok(("tc", None));
        }
        let owned = prog.take_link(link).map_err(Hook::Tc.program_error())?;
        match FdLink::try_from(owned) {
            Ok(fd) => Ok(("tc", Some(fd))),
            Err(e) => {
                warn!(iface = %iface.name, "TC link not pinnable ({e}): a restart re-attaches");
                Ok(("tc", None))
            }
        }
    }
}

fn attach_error(iface: &Interface, e: &dyn std::error::Error) -> DataplaneError {
    DataplaneError::Attach {
        iface: iface.name.clone(),
        reason: error_chain(e),
    }
}

fn pin_error(pin: &Path, e: &dyn std::fmt::Display) -> DataplaneError {
    DataplaneError::Pin {
        path: pin.display().to_string(),
        reason: e.to_string(),
    }
}

/// An error with its causes, one after the other.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}
