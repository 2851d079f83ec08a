//! The sync parameters a node runs with, resolved from `lvs_sync_daemon`
//! with keepalived's and the kernel's defaults.

use std::net::IpAddr;

use crate::config::Config;

use super::packet;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyncSettings {
    pub interface: String,
    /// The VRRP instance whose state gives the role; `None`: send and
    /// receive all the time.
    pub vrrp_instance: Option<String>,
    pub syncid: u8,
    pub send_maxlen: usize,
    pub port: u16,
    pub ttl: u8,
    pub group: IpAddr,
}

impl SyncSettings {
    /// `None` without `lvs_sync_daemon`. The sync id defaults to the
    /// instance's `virtual_router_id`, as keepalived's; without an instance
    /// to 0, which a receiver takes as "any id", as the kernel does.
    pub fn from_config(c: &Config) -> Option<SyncSettings> {
        let d = c.global_defs.lvs_sync_daemon.as_ref()?;
        let vrid = d
            .vrrp_instance
            .as_ref()
            .and_then(|n| c.vrrp_instances.iter().find(|i| &i.name == n))
            .map(|i| i.virtual_router_id);
        Some(SyncSettings {
            interface: d.interface.clone(),
            vrrp_instance: d.vrrp_instance.clone(),
            syncid: d.syncid.or(vrid).unwrap_or(0),
            send_maxlen: d
                .maxlen
                .map(usize::from)
                .unwrap_or_else(|| packet::default_send_maxlen(d.group.is_ipv6())),
            port: d.port,
            ttl: d.ttl,
            group: d.group,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn settings(text: &str) -> Option<SyncSettings> {
        let l = crate::config::parse_str(text, Path::new("t.conf")).unwrap();
        SyncSettings::from_config(&l.config)
    }

    #[test]
    fn the_sync_id_defaults_to_the_instances_vrid_and_maxlen_to_the_kernels() {
        let vi = "vrrp_instance VI_1 {\n interface e\n virtual_router_id 42\n}\n";
        let s = settings(&format!(
            "global_defs {{\n lvs_sync_daemon eth1 VI_1\n}}\n{vi}"
        ))
        .unwrap();
        assert_eq!(
            (s.syncid, s.send_maxlen, s.port, s.ttl),
            (42, 1472, 8848, 1)
        );
        let s = settings(&format!(
            "global_defs {{\n lvs_sync_daemon eth1 VI_1 id 3 maxlen 900\n}}\n{vi}"
        ))
        .unwrap();
        assert_eq!((s.syncid, s.send_maxlen), (3, 900));
        let s = settings("global_defs {\n lvs_sync_daemon eth1\n}\n").unwrap();
        assert_eq!((s.syncid, s.vrrp_instance), (0, None));
        assert_eq!(settings("global_defs {\n router_id r\n}\n"), None);
    }
}
