//! A namespace for BPF_PROG_TEST_RUN fixtures whose program consults the
//! kernel's FIB (NAT, TUN): a veth with the balancer's address, permanent
//! neighbours for the backends and the client, and forwarding on.
//! Test-run frames arrive on the namespace's loopback (ifindex 1).

use std::net::IpAddr;

use anyhow::Result;

use crate::netns::{self, Netns};

/// The balancer's MAC on its backend-facing veth `v0`.
pub const V0_MAC: [u8; 6] = [0x02, 0x09, 0, 0, 0, 0x01];
pub const V0_ADDR4: &str = "10.9.0.1";
pub const V0_ADDR6: &str = "fd09::1";

pub struct FibNet {
    pub ns: Netns,
    /// ifindex of `v0`, where FIB lookups send frames.
    pub v0: u32,
}

fn mac_str(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

impl FibNet {
    /// `neighbours`: addresses (in 10.9.0.0/24 or fd09::/64) and their MACs.
    pub fn new(neighbours: &[(IpAddr, [u8; 6])]) -> Result<Self> {
        let ns = Netns::new(format!("{}-fib", netns::unique_prefix()))?;
        ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"])?;
        ns.ip(&["link", "set", "v0", "address", &mac_str(V0_MAC)])?;
        ns.ip(&["link", "set", "v0", "up"])?;
        ns.ip(&["link", "set", "v1", "up"])?;
        ns.ip(&["addr", "add", &format!("{V0_ADDR4}/24"), "dev", "v0"])?;
        ns.ip(&[
            "addr",
            "add",
            &format!("{V0_ADDR6}/64"),
            "dev",
            "v0",
            "nodad",
        ])?;
        for (ip, mac) in neighbours {
            ns.ip(&[
                "neigh",
                "replace",
                &ip.to_string(),
                "lladdr",
                &mac_str(*mac),
                "dev",
                "v0",
                "nud",
                "permanent",
            ])?;
        }
        ns.sh("echo 1 > /proc/sys/net/ipv4/conf/all/forwarding; \
             echo 1 > /proc/sys/net/ipv6/conf/all/forwarding")?;
        let out = ns.ip(&["-o", "link", "show", "v0"])?;
        let v0 = String::from_utf8_lossy(&out.stdout)
            .split(':')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no ifindex for v0"))?;
        Ok(Self { ns, v0 })
    }
}
