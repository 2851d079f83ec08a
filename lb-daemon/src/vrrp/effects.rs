//! Carrying out what the core decided ([`Action`]s), in order: adverts on
//! the VRRP socket, virtual addresses over netlink, gratuitous ARP /
//! unsolicited NA on AF_PACKET, notify scripts. Nothing here decides:
//! a failure is logged and the core is not told, so the state machine
//! stays pure and the next advert or announcement is the retry.

use tracing::{debug, warn, Instrument, Span};

use crate::net::Netlink;

use super::addresses;
use super::config_map::InstanceSpec;
use super::instance::{Action, State};
use super::member::{Member, Running};
use super::notify;
use super::status::{now_secs, Transition};

impl Member {
    /// Carries out `actions` in order (until the member is not running).
    pub async fn carry_out(&mut self, actions: Vec<Action>, net: &Netlink) {
        for action in actions {
            let Some(run) = self.run.as_mut() else {
                return;
            };
            match action {
                Action::SendAdvert { priority } => run.send_advert(priority, &self.span),
                Action::AddAddresses => {
                    addresses::add(net, &self.spec.config, run.link.index)
                        .instrument(self.span.clone())
                        .await
                }
                Action::RemoveAddresses => {
                    addresses::remove(net, &self.spec.config, run.link.index)
                        .instrument(self.span.clone())
                        .await
                }
                Action::SendGratuitous { count } => run.announce(&self.spec, count, &self.span),
                Action::StateChanged { from, to, reason } => {
                    self.last_transition = Some(Transition {
                        from,
                        to,
                        reason,
                        at: now_secs(),
                    });
                }
                Action::Notify(state) => run.notify(&self.spec, state, &self.span),
            }
        }
    }
}

impl Running {
    /// Sends an advert with `priority`. A failure is logged at most every
    /// so often: the next advert is the retry.
    fn send_advert(&mut self, priority: u8, span: &Span) {
        let advert = self.core.advert(priority);
        if let Err(e) = self.socket.send(&advert) {
            if self.send_errors.due() {
                let _g = span.enter();
                warn!("sending advert: {e}");
            }
        }
    }

    /// Sends `count` gratuitous ARPs / unsolicited NAs for every virtual
    /// address, out of the address's own interface.
    fn announce(&self, spec: &InstanceSpec, count: u32, span: &Span) {
        let _g = span.enter();
        for a in addresses::lines(&spec.config) {
            if let Some(g) = self.garp.get(&a.dev) {
                if let Err(e) = g.announce(a.addr, count) {
                    debug!(addr = %a.addr, "gratuitous announcement: {e}");
                }
            }
        }
    }

    /// Runs the instance's notify hooks for `state`.
    fn notify(&self, spec: &InstanceSpec, state: State, span: &Span) {
        let priority = self.core.effective_priority();
        let _g = span.enter();
        notify::run(
            &spec.config.notify,
            notify::Subject::Instance {
                name: spec.name(),
                priority,
            },
            state,
        );
    }
}
