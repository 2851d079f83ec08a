//! A blocking generic netlink socket speaking to the kernel's IPVS family:
//! family resolution through nlctrl, requests with their acknowledgement,
//! and dumps.

use std::sync::atomic::{AtomicU32, Ordering};

use netlink_packet_core::{
    NetlinkMessage, NetlinkPayload, NetlinkSerializable, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_generic::{
    ctrl::{nlas::GenlCtrlAttrs, GenlCtrl, GenlCtrlCmd},
    GenlFamily, GenlMessage,
};
use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};

use super::attrs::{IpvsMessage, FAMILY_NAME};

/// What went wrong talking to the kernel.
#[derive(Debug)]
pub enum GenlError {
    /// The kernel refused: a positive errno.
    Kernel(i32),
    /// The socket or the message itself.
    Io(std::io::Error),
    Decode(String),
}

impl GenlError {
    pub fn errno(&self) -> Option<i32> {
        match self {
            GenlError::Kernel(e) => Some(*e),
            GenlError::Io(e) => e.raw_os_error(),
            GenlError::Decode(_) => None,
        }
    }
}

impl std::fmt::Display for GenlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GenlError::Kernel(e) => write!(
                f,
                "{} ({})",
                errno_name(*e),
                std::io::Error::from_raw_os_error(*e)
            ),
            GenlError::Io(e) => write!(f, "{e}"),
            GenlError::Decode(e) => write!(f, "malformed reply: {e}"),
        }
    }
}

impl std::error::Error for GenlError {}

pub fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EEXIST => "EEXIST",
        libc::EINVAL => "EINVAL",
        libc::ENOMEM => "ENOMEM",
        libc::EBUSY => "EBUSY",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::ERANGE => "ERANGE",
        _ => "errno",
    }
}

/// A socket bound to the generic netlink bus with a resolved family.
pub struct Genl {
    socket: Socket,
    family: u16,
    seq: AtomicU32,
}

impl Genl {
    /// Opens a socket and resolves the IPVS family. `Kernel(ENOENT)` means
    /// the kernel has no IPVS (module not loaded or not built).
    pub fn open() -> Result<Self, GenlError> {
        let mut socket = Socket::new(NETLINK_GENERIC).map_err(GenlError::Io)?;
        socket.bind_auto().map_err(GenlError::Io)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(GenlError::Io)?;
        let _ = socket.set_ext_ack(true);
        let mut genl = Genl {
            socket,
            family: 0,
            seq: AtomicU32::new(1),
        };
        genl.family = genl.resolve(FAMILY_NAME)?;
        Ok(genl)
    }

    pub fn family_id(&self) -> u16 {
        self.family
    }

    fn resolve(&self, name: &str) -> Result<u16, GenlError> {
        let msg = GenlMessage::from_payload(GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(name.to_string())],
        });
        let replies = self.exchange(msg, NLM_F_REQUEST | NLM_F_ACK)?;
        replies
            .iter()
            .flat_map(|r: &GenlMessage<GenlCtrl>| r.payload.nlas.iter())
            .find_map(|a| match a {
                GenlCtrlAttrs::FamilyId(id) => Some(*id),
                _ => None,
            })
            .ok_or_else(|| GenlError::Decode(format!("no id for family {name}")))
    }

    /// Sends a command and waits for its acknowledgement.
    pub fn request(&self, msg: IpvsMessage) -> Result<Vec<IpvsMessage>, GenlError> {
        let mut genl = GenlMessage::from_payload(msg);
        genl.set_resolved_family_id(self.family);
        let replies = self.exchange(genl, NLM_F_REQUEST | NLM_F_ACK)?;
        Ok(replies.into_iter().map(|g| g.payload).collect())
    }

    /// Sends a dump request and collects every reply until NLMSG_DONE.
    pub fn dump(&self, msg: IpvsMessage) -> Result<Vec<IpvsMessage>, GenlError> {
        let mut genl = GenlMessage::from_payload(msg);
        genl.set_resolved_family_id(self.family);
        let replies = self.exchange(genl, NLM_F_REQUEST | NLM_F_DUMP)?;
        Ok(replies.into_iter().map(|g| g.payload).collect())
    }

    fn exchange<F>(
        &self,
        payload: GenlMessage<F>,
        flags: u16,
    ) -> Result<Vec<GenlMessage<F>>, GenlError>
    where
        F: GenlFamily
            + netlink_packet_core::Emitable
            + netlink_packet_core::ParseableParametrized<[u8], netlink_packet_generic::GenlHeader>
            + std::fmt::Debug,
        GenlMessage<F>: NetlinkSerializable,
    {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut nl = NetlinkMessage::from(payload);
        nl.header.flags = flags;
        nl.header.sequence_number = seq;
        nl.finalize();
        let mut tx = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut tx);
        self.socket.send(&tx, 0).map_err(GenlError::Io)?;

        let mut out = Vec::new();
        let mut rx: Vec<u8> = Vec::with_capacity(64 * 1024);
        loop {
            rx.clear();
            let n = self.socket.recv(&mut rx, 0).map_err(GenlError::Io)?;
            let mut offset = 0;
            while offset < n {
                let msg = NetlinkMessage::<GenlMessage<F>>::deserialize(&rx[offset..n])
                    .map_err(|e| GenlError::Decode(e.to_string()))?;
                let len = msg.header.length as usize;
                if len == 0 {
                    break;
                }
                offset += (len + 3) & !3;
                if msg.header.sequence_number != seq {
                    continue; // a late answer to an earlier request
                }
                match msg.payload {
                    // A request's reply is followed by its ACK, a dump's
                    // parts by NLMSG_DONE.
                    NetlinkPayload::InnerMessage(m) => out.push(m),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(out),
                            Some(code) => Err(GenlError::Kernel(-code.get())),
                        };
                    }
                    NetlinkPayload::Done(_) => return Ok(out),
                    _ => {}
                }
            }
        }
    }
}
