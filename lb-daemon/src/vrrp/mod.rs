//! VRRP (RFC 3768 v2, RFC 5798 / RFC 9568 v3), sans I/O.
//!
//! Everything here is pure: the codec turns bytes into [`packet::Advert`]s and
//! back, and [`instance::Instance`] is a state machine that is fed
//! [`instance::Event`]s with the current time and answers with
//! [`instance::Action`]s for the caller to carry out (send an advert, add the
//! virtual addresses, send gratuitous ARPs, ...). Sockets, netlink and the
//! real clock live in the daemon around it, which keeps every timer and
//! tie-break here testable with a fake clock.
//!
//! The behaviour mirrors keepalived 2.2.x wherever it differs from the RFCs,
//! since we must be a correct peer of it.
//!
//! The I/O around the core ([`VrrpRuntime`], started by lbd):
//! - `config_map`: keepalived.conf model → [`config_map::UnitSpec`]s (a sync
//!   group with its members, or one instance) and the core's parameters;
//! - `runtime`: the lifecycle (start, SIGHUP reload keeping unchanged
//!   units running, stop, stop for a restart);
//! - `tasks`: the tasks and what feeds what (a diagram): one driver task
//!   per unit, a reader per socket, the trackers;
//! - `driver`: one unit's loop, one handler per input (timer, packet,
//!   link, script, sync group command);
//! - `member`: one instance as the driver runs it, one `vrrp` tracing span
//!   each; `setup`: what it needs from the kernel before it runs;
//! - `effects`: carrying out the core's actions;
//! - `reader`: the socket reader;
//! - `network`: raw IP protocol 112 sockets (multicast 224.0.0.18 / ff02::12
//!   or unicast peers, TTL / hop limit 255);
//! - `addresses`: an instance's virtual addresses and routes, added and
//!   removed through [`crate::net`];
//! - `garp`: gratuitous ARP / unsolicited NA on AF_PACKET;
//! - `track`: track_interface (link state) and vrrp_script (child processes);
//! - `notify`: notify scripts as child processes;
//! - `status`: the shared [`StatusBoard`] others read;
//! - `restart`: what a master leaves for the next lbd on a restart
//!   (`--on-exit keep`), so that it resumes as master with no transition.

pub mod addresses;
pub mod config_map;
pub mod counters;
mod driver;
mod effects;
pub mod fifo;
pub mod garp;
pub mod instance;
mod member;
pub mod network;
pub mod notify;
pub mod packet;
pub mod params;
mod reader;
pub mod reason;
pub mod restart;
pub mod runtime;
mod setup;
pub mod status;
pub mod sync_group;
mod tasks;
pub mod timing;
pub mod track;
pub mod validate;

#[cfg(test)]
mod tests;

pub use counters::Counters;
pub use instance::{Action, Event, Instance, State, TrackerEffect, TransitionReason};
pub use packet::{
    decode, decode_ipv4, encode, encode_ipv4, Advert, AdvertInterval, Auth, DecodeError,
    EncodeError, Ipv4Advert, PseudoHeader, Version,
};
pub use params::{GarpParams, InitialState, InstanceParams, ParamError};
pub use reason::DropReason;
pub use runtime::VrrpRuntime;
pub use status::{InstanceStatus, StatusBoard};
pub use sync_group::{MemberStatus, SyncCommand, SyncDecision, SyncGroup};
pub use validate::AdvertError;
