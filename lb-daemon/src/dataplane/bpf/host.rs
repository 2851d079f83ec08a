//! What the program is told about the host: the interfaces it sends out
//! of, the tunnels' source addresses, and its settings (timeouts, NAT).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lb_common::{maps as names, Iface};

use super::{maps::map_err, XdpDataplane};
use crate::{
    dataplane::{addr_words, DataplaneError},
    net::{Interface, MacAddr},
};

impl XdpDataplane {
    /// Records an interface the program sends out of: its MAC (the source
    /// of its frames) and MTU.
    pub fn set_interface(&mut self, iface: &Interface) -> Result<(), DataplaneError> {
        self.write_iface(iface.index, iface.mac, iface.mtu)
    }

    /// Records an interface's MAC (BPF_PROG_TEST_RUN runs the program as if
    /// the frame arrived on loopback, ifindex 1 of the caller's namespace).
    pub fn set_interface_mac(&mut self, ifindex: u32, mac: MacAddr) -> Result<(), DataplaneError> {
        self.write_iface(ifindex, mac, 1500)
    }

    fn write_iface(&mut self, ifindex: u32, mac: MacAddr, mtu: u32) -> Result<(), DataplaneError> {
        if ifindex >= lb_common::MAX_IFINDEX {
            return Err(DataplaneError::Capacity {
                what: "interface index",
                max: lb_common::MAX_IFINDEX - 1,
            });
        }
        self.maps
            .ifaces
            .set(
                ifindex,
                Iface {
                    mac: mac.0,
                    present: 1,
                    _pad: 0,
                    mtu,
                },
                0,
            )
            .map_err(map_err(names::IFACES))
    }

    /// Outer source addresses of TUN packets.
    pub fn set_tunnel_source(
        &mut self,
        v4: Option<Ipv4Addr>,
        v6: Option<Ipv6Addr>,
    ) -> Result<(), DataplaneError> {
        if let Some(v4) = v4 {
            self.settings.tun_src4 = u32::from_ne_bytes(v4.octets());
        }
        if let Some(v6) = v6 {
            self.settings.tun_src6 = addr_words(IpAddr::V6(v6)).0;
        }
        self.write_settings()
    }

    /// Writes `settings` where the program reads them.
    pub(super) fn write_settings(&mut self) -> Result<(), DataplaneError> {
        self.maps
            .settings
            .set(0, self.settings, 0)
            .map_err(map_err(names::SETTINGS))
    }
}
