//! IPVS connection sync against the kernel's own sync daemon, both ways,
//! through real sockets: the kernel master's multicast decoded by
//! `connsync::packet` and checked against `ipvsadm -Lnc`; records encoded by
//! `connsync::packet` installed by a kernel backup; and the IPVS tier's
//! `sync_daemon` API starting and stopping the kernel's daemons.
//!
//! IPVS has one table per network namespace, so the master is the VM's
//! root namespace (the lab's director) and the backup is the namespace
//! `sy`, cabled to it by `l-sy` (10.10.9.1) ↔ `i-sy` (10.10.9.2). The
//! kernel's sender turns multicast loop off: a listener must be on the
//! other end of the cable.
//!
//! The capture test also prints every datagram it heard as
//! `SYNC-CAPTURE N HEX` on the VM's output (past libtest's capture), which
//! is how lb-daemon/src/connsync/testdata/ was recorded.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context, Result};
use lb_daemon::{
    connsync::packet::{self, flags, state, MessageBuilder, SyncConn},
    dataplane::ipvs::{
        genl::Genl,
        sync_daemon::{self, DaemonOp, DaemonState, Role, SyncDaemonParams},
    },
};
use lb_tests::{
    ipvs_lab::{ipvsadm, wait_for, Lab, VIP},
    netns::{run, Netns},
};
use socket2::{Domain, Protocol, Socket, Type};

use super::Cleared;

const SYNCID: u8 = 5;
const GROUP: Ipv4Addr = packet::DEFAULT_GROUP_V4;
const PORT: u16 = packet::DEFAULT_PORT;
const MASTER_IF: &str = "l-sy";
const BACKUP_IF: &str = "i-sy";
const MASTER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 10, 9, 1);
const BACKUP_ADDR: Ipv4Addr = Ipv4Addr::new(10, 10, 9, 2);
const VIP6: &str = "2001:db8:100::1";
const CLIENT6: &str = "2001:db8:1::2";

/// The backup's namespace and cable; stops the root namespace's daemons
/// and takes the lab's IPv6 addresses away when dropped.
struct SyncNet {
    sy: Netns,
}

impl SyncNet {
    fn new() -> Result<Self> {
        let sy = Netns::new("sy".into())?;
        let net = SyncNet { sy };
        run(Command::new("ip").args([
            "link", "add", MASTER_IF, "type", "veth", "peer", "name", BACKUP_IF, "netns", "sy",
        ]))?;
        run(Command::new("ip").args(["addr", "add", "10.10.9.1/24", "dev", MASTER_IF]))?;
        run(Command::new("ip").args(["link", "set", MASTER_IF, "up"]))?;
        net.sy
            .ip(&["addr", "add", "10.10.9.2/24", "dev", BACKUP_IF])?;
        net.sy.ip(&["link", "set", BACKUP_IF, "up"])?;
        Ok(net)
    }

    /// `ipvsadm ARGS` in the backup's namespace.
    fn ipvsadm(&self, args: &[&str]) -> Result<String> {
        let out = run(self.sy.command("ipvsadm").args(args))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The backup's own daemons, driven by the IPVS tier's API from inside
    /// its namespace.
    fn set_backup_role(&self, role: Role, p: SyncDaemonParams) -> Result<Vec<DaemonOp>> {
        self.sy.enter(move || {
            let genl = Genl::open().map_err(|e| anyhow::anyhow!("genl: {e}"))?;
            Ok(sync_daemon::set_role(&genl, role, &p)?)
        })
    }
}

impl Drop for SyncNet {
    fn drop(&mut self) {
        for d in ["master", "backup"] {
            let _ = Command::new("ipvsadm").args(["--stop-daemon", d]).output();
        }
        let _ = Command::new("ip")
            .args(["addr", "del", &format!("{VIP6}/128"), "dev", "lo"])
            .output();
    }
}

/// IPv6 for the client and backend b0 (no DAD: usable at once) and the
/// IPv6 VIP on the director's loopback.
fn lab_ipv6(lab: &Lab) -> Result<()> {
    let root = |a: &[&str]| run(Command::new("ip").args(a)).map(|_| ());
    root(&[
        "-6",
        "addr",
        "add",
        "2001:db8:1::1/64",
        "dev",
        "l-cli",
        "nodad",
    ])?;
    root(&[
        "-6",
        "addr",
        "add",
        "2001:db8:2::1/64",
        "dev",
        "l-b0",
        "nodad",
    ])?;
    root(&["-6", "addr", "add", &format!("{VIP6}/128"), "dev", "lo"])?;
    let cli = lab.client();
    cli.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{CLIENT6}/64"),
        "dev",
        "i-cli",
        "nodad",
    ])?;
    cli.ip(&["-6", "route", "add", "default", "via", "2001:db8:1::1"])?;
    Ok(())
}

/// The master's services (also given to the backup, so that its synced
/// connections bind to their real servers).
const SERVICES: &[&str] = &[
    // NAT, rr over b0 only: every connection's backend is known.
    "-A -t 10.10.0.100:80 -s rr",
    "-a -t 10.10.0.100:80 -r 10.10.2.2:80 -m",
    // Persistent NAT, VIP port 81 to b1's port 80: a TEMPLATE record.
    "-A -t 10.10.0.100:81 -s rr -p 300",
    "-a -t 10.10.0.100:81 -r 10.10.3.2:80 -m",
    // UDP, direct routing and tunnelling.
    "-A -u 10.10.0.100:53 -s rr",
    "-a -u 10.10.0.100:53 -r 10.10.2.2:53 -g",
    "-A -u 10.10.0.100:54 -s rr",
    "-a -u 10.10.0.100:54 -r 10.10.3.2:54 -i",
    // IPv6 UDP, direct routing.
    "-A -u [2001:db8:100::1]:53 -s rr",
    "-a -u [2001:db8:100::1]:53 -r [2001:db8:2::2]:53 -g",
];

fn install_services(ipvsadm: impl Fn(&[&str]) -> Result<String>) -> Result<()> {
    for s in SERVICES {
        ipvsadm(&s.split(' ').collect::<Vec<_>>())?;
    }
    Ok(())
}

/// A TCP connection from the client's fixed `port` to `vip`, in the
/// client's namespace; `request` is written once connected.
fn tcp_from(lab: &Lab, port: u16, vip: SocketAddr, request: &'static [u8]) -> Result<TcpStream> {
    lab.client().enter(move || {
        let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        s.set_reuse_address(true)?;
        s.bind(&SocketAddr::from(([10, 10, 1, 2], port)).into())?;
        s.connect_timeout(&vip.into(), Duration::from_secs(3))?;
        let mut t: TcpStream = s.into();
        t.write_all(request)?;
        Ok(t)
    })
}

/// Three datagrams (the kernel syncs a UDP connection at its third packet,
/// `sync_threshold` 3) from the client's `from` to `to`.
fn udp_from(lab: &Lab, from: SocketAddr, to: SocketAddr) -> Result<()> {
    lab.client().enter(move || {
        let s = UdpSocket::bind(from)?;
        for i in 0..3u8 {
            s.send_to(&[b'q', i], to)?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    })
}

/// One line of `ipvsadm -Lnc`: (protocol, state) by (client, vip, dest).
type Entries = BTreeMap<(SocketAddr, SocketAddr, SocketAddr), (String, String)>;

fn conn_entries(text: &str) -> Result<Entries> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.len() < 6 {
            continue;
        }
        let sa = |s: &str| -> Result<SocketAddr> {
            s.parse().with_context(|| format!("`{s}` in `{line}`"))
        };
        out.insert(
            (sa(t[3])?, sa(t[4])?, sa(t[5])?),
            (t[0].to_string(), t[2].to_string()),
        );
    }
    Ok(out)
}

/// The state name /proc/net/ip_vs_conn (and so ipvsadm) shows for a record.
fn state_name(c: &SyncConn) -> String {
    const TCP: [&str; 11] = [
        "NONE",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "SYNACK",
    ];
    let s = usize::from(c.state);
    if c.is_template() {
        ["NONE", "ASSURED"].get(s).unwrap_or(&"?").to_string()
    } else if c.protocol == 17 {
        "UDP".into()
    } else {
        TCP.get(s).unwrap_or(&"?").to_string()
    }
}

fn proto_name(p: u8) -> String {
    match p {
        6 => "TCP".into(),
        17 => "UDP".into(),
        n => format!("{n}"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Receives on the backup's side of the cable (group joined on `i-sy`).
fn listener(net: &SyncNet) -> Result<UdpSocket> {
    net.sy.enter(|| {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
        // The kernel's backup daemon binds the same port (SK_CAN_REUSE).
        s.set_reuse_address(true)?;
        s.bind(&SocketAddr::from(SocketAddrV4::new(GROUP, PORT)).into())?;
        s.join_multicast_v4(&GROUP, &BACKUP_ADDR)?;
        let u: UdpSocket = s.into();
        u.set_read_timeout(Some(Duration::from_millis(300)))?;
        Ok(u)
    })
}

/// A kernel master (started by `ipvsadm --start-daemon master`) syncs real
/// connections; every datagram decodes, every record is a connection the
/// master holds with the same protocol, backend and state, and a kernel
/// backup (started by the IPVS tier's API) ends with the same table.
#[test]
#[ignore = "runs inside the IPVS VM: cargo xtask vm-test"]
fn kernel_master_sync_decodes_and_matches_ipvsadm() -> Result<()> {
    let _cleared = Cleared;
    let lab = Lab::new()?;
    let net = SyncNet::new()?;
    lab_ipv6(&lab)?;
    install_services(ipvsadm)?;
    install_services(|a| net.ipvsadm(a))?;
    let rx = listener(&net)?;
    net.set_backup_role(Role::Backup, SyncDaemonParams::new(BACKUP_IF, SYNCID))?;
    ipvsadm(&[
        "--start-daemon",
        "master",
        "--mcast-interface",
        MASTER_IF,
        "--syncid",
        &SYNCID.to_string(),
    ])?;

    let vip = |port: u16| SocketAddr::new(VIP.parse().unwrap(), port);
    // A whole exchange first (lb-test-http answers one connection at a
    // time): its closing states are synced as they change.
    let mut done = tcp_from(&lab, 40082, vip(80), b"GET / HTTP/1.0\r\n\r\n")?;
    let mut body = String::new();
    done.set_read_timeout(Some(Duration::from_secs(3)))?;
    done.read_to_string(&mut body)?;
    ensure!(body.contains("b0"), "answered by {body:?}");
    drop(done);
    // Held open, a request not yet complete: they stay ESTABLISHED.
    let _held80 = tcp_from(&lab, 40080, vip(80), b"GET / HTTP/1.0\r\n")?;
    let _held81 = tcp_from(&lab, 40081, vip(81), b"GET / HTTP/1.0\r\n")?;
    udp_from(&lab, "10.10.1.2:40053".parse()?, vip(53))?;
    udp_from(&lab, "10.10.1.2:40054".parse()?, vip(54))?;
    udp_from(
        &lab,
        format!("[{CLIENT6}]:40056").parse()?,
        format!("[{VIP6}]:53").parse()?,
    )?;

    // The master flushes what it holds at least every 2 s.
    let mut heard: Vec<Vec<u8>> = Vec::new();
    let mut last: BTreeMap<_, SyncConn> = BTreeMap::new();
    let end = Instant::now() + Duration::from_secs(20);
    let mut quiet_since = Instant::now();
    let mut buf = [0u8; 65536];
    while Instant::now() < end {
        match rx.recv_from(&mut buf) {
            Ok((n, from)) => {
                ensure!(
                    from.ip() == IpAddr::V4(MASTER_ADDR),
                    "a datagram from {from}"
                );
                let msg = packet::decode(&buf[..n], SYNCID)
                    .with_context(|| format!("datagram {}: {}", heard.len(), hex(&buf[..n])))?;
                ensure!(msg.skipped.is_empty(), "skipped {:?}", msg.skipped);
                for c in msg.conns {
                    last.insert((c.client, c.vip, c.dest, c.is_template()), c);
                }
                heard.push(buf[..n].to_vec());
                quiet_since = Instant::now();
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                // 6 connections and 1 template, then 3 s of silence.
                if last.len() >= 7 && quiet_since.elapsed() > Duration::from_secs(3) {
                    break;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut stdout = std::io::stdout();
    for (i, d) in heard.iter().enumerate() {
        writeln!(stdout, "SYNC-CAPTURE {i} {}", hex(d))?;
    }
    let master = conn_entries(&ipvsadm(&["-Lnc"])?)?;
    ensure!(
        last.len() == 7,
        "heard {} records: {:#?}\nipvsadm -Lnc:\n{}",
        last.len(),
        last,
        ipvsadm(&["-Lnc"])?
    );
    let mut forwards = Vec::new();
    for c in last.values() {
        let (proto, st) = master
            .get(&(c.client, c.vip, c.dest))
            .with_context(|| format!("{c:?} not in the master's ipvsadm -Lnc:\n{master:#?}"))?;
        ensure!(*proto == proto_name(c.protocol), "{c:?}: {proto}");
        // A TCP connection may have moved on since its last sync (the
        // backend closes a held one after a while); the others may not.
        ensure!(
            *st == state_name(c) || c.protocol == 6 && !c.is_template(),
            "{c:?}: the master says {st}"
        );
        forwards.push(c.forward());
    }
    forwards.sort();
    forwards.dedup();
    ensure!(
        forwards == vec![flags::MASQ, flags::TUNNEL, flags::DROUTE],
        "{forwards:?}"
    );
    ensure!(
        last.values()
            .any(|c| c.is_template() && c.client.port() == 0),
        "no persistence template"
    );
    ensure!(last.values().any(|c| c.client.is_ipv6()), "no IPv6 record");

    // The kernel backup heard the same and holds the same.
    let mut backup = BTreeMap::new();
    wait_for("the backup to hold the master's connections", 10, || {
        backup = conn_entries(&net.ipvsadm(&["-Lnc"])?)?;
        Ok(last
            .keys()
            .all(|(c, v, d, _)| backup.contains_key(&(*c, *v, *d))))
    })
    .with_context(|| format!("backup: {backup:#?}"))?;
    for c in last.values() {
        let (proto, st) = &backup[&(c.client, c.vip, c.dest)];
        // What was heard, or a later sync this test did not wait for (then
        // the master's state now).
        let now = &master[&(c.client, c.vip, c.dest)].1;
        ensure!(
            *proto == proto_name(c.protocol) && (*st == state_name(c) || st == now),
            "backup holds {proto} {st} for {c:?} (master: {now})"
        );
    }
    Ok(())
}

/// One of lbd's records and what `ipvsadm -Lnc` must show for it.
fn record(protocol: u8, fl: u32, st: u16, addrs: [&str; 3], timeout: u32) -> Result<SyncConn> {
    Ok(SyncConn {
        protocol,
        flags: fl,
        state: st,
        client: addrs[0].parse()?,
        vip: addrs[1].parse()?,
        dest: addrs[2].parse()?,
        fwmark: 0,
        timeout,
        seq: None,
        pe_data: None,
        pe_name: None,
    })
}

/// Records encoded by `connsync::packet` and multicast from the master's
/// side are installed by the kernel's backup daemon (started by the IPVS
/// tier's API): each with its backend, state and timeout; a message with
/// another sync id is ignored.
#[test]
#[ignore = "runs inside the IPVS VM: cargo xtask vm-test"]
fn our_encoder_feeds_a_kernel_backup() -> Result<()> {
    let net = SyncNet::new()?;
    install_services(|a| net.ipvsadm(a))?;
    let ops = net.set_backup_role(Role::Backup, SyncDaemonParams::new(BACKUP_IF, SYNCID))?;
    ensure!(
        matches!(ops.as_slice(), [DaemonOp::Start(DaemonState::Backup, _)]),
        "{ops:?}"
    );
    let conns = vec![
        record(
            6,
            flags::MASQ,
            state::TCP_ESTABLISHED,
            ["10.10.1.77:41000", "10.10.0.100:80", "10.10.2.2:80"],
            900,
        )?,
        record(
            17,
            flags::DROUTE,
            state::UDP_NORMAL,
            ["10.10.1.77:41053", "10.10.0.100:53", "10.10.2.2:53"],
            300,
        )?,
        record(
            17,
            flags::TUNNEL,
            state::UDP_NORMAL,
            ["10.10.1.77:41054", "10.10.0.100:54", "10.10.3.2:54"],
            300,
        )?,
        record(
            6,
            flags::TEMPLATE | flags::MASQ,
            state::TEMPLATE_NONE,
            ["10.10.1.77:0", "10.10.0.100:81", "10.10.3.2:80"],
            300,
        )?,
        record(
            6,
            flags::MASQ,
            state::TCP_FIN_WAIT,
            ["10.10.1.77:41081", "10.10.0.100:81", "10.10.3.2:80"],
            120,
        )?,
        record(
            17,
            flags::DROUTE,
            state::UDP_NORMAL,
            [
                "[2001:db8:1::77]:41056",
                "[2001:db8:100::1]:53",
                "[2001:db8:2::2]:53",
            ],
            300,
        )?,
    ];
    let mut b = MessageBuilder::new(SYNCID, packet::default_send_maxlen(false));
    for c in &conns {
        b.push(c)?;
    }
    let stranger = record(
        17,
        flags::DROUTE,
        state::UDP_NORMAL,
        ["10.10.1.99:41099", "10.10.0.100:53", "10.10.2.2:53"],
        300,
    )?;
    let mut other = MessageBuilder::new(SYNCID + 1, 1472);
    other.push(&stranger)?;

    let tx = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    tx.bind(&SocketAddr::from((MASTER_ADDR, 0)).into())?;
    tx.set_multicast_if_v4(&MASTER_ADDR)?;
    tx.set_multicast_ttl_v4(1)?;
    let to = SocketAddr::from(SocketAddrV4::new(GROUP, PORT)).into();
    tx.send_to(&other.finish(), &to)?;
    tx.send_to(&b.finish(), &to)?;

    let mut shown = BTreeMap::new();
    let mut text = String::new();
    let got = wait_for("the kernel backup to install our records", 10, || {
        text = net.ipvsadm(&["-Lnc"])?;
        shown = conn_entries(&text)?;
        Ok(conns
            .iter()
            .all(|c| shown.contains_key(&(c.client, c.vip, c.dest))))
    });
    got.with_context(|| text.clone())?;
    for c in &conns {
        let (proto, st) = &shown[&(c.client, c.vip, c.dest)];
        ensure!(
            *proto == proto_name(c.protocol) && *st == state_name(c),
            "{c:?} shown as {proto} {st}\n{text}"
        );
    }
    // Timeouts: the expiry column counts down from what was sent.
    for line in text.lines() {
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.len() < 6 || t[1].split(':').count() != 2 {
            continue;
        }
        let (m, s) = t[1].split_once(':').context("expire")?;
        let left = m.parse::<u32>()? * 60 + s.parse::<u32>()?;
        let sent = conns
            .iter()
            .find(|c| c.client.to_string() == t[3] && c.vip.to_string() == t[4])
            .map(|c| c.timeout)
            .context("an entry lbd did not send")?;
        ensure!(
            left <= sent && left + 30 >= sent,
            "{line}: {left}s left of {sent}s"
        );
    }
    ensure!(
        !shown.contains_key(&(stranger.client, stranger.vip, stranger.dest)),
        "a message with sync id {} was installed\n{text}",
        SYNCID + 1
    );
    // The synced connections count on their backends (ActiveConn /
    // InActConn, persistent templates apart).
    let table = net.ipvsadm(&["-Ln"])?;
    let b0_tcp = table
        .lines()
        .skip_while(|l| !l.contains("TCP  10.10.0.100:80"))
        .nth(1)
        .context("b0 under VIP:80")?;
    let t: Vec<&str> = b0_tcp.split_whitespace().collect();
    ensure!(
        t.get(1) == Some(&"10.10.2.2:80") && t.get(4) == Some(&"1"),
        "b0 without its active connection: {b0_tcp}\n{table}"
    );
    Ok(())
}

/// The IPVS tier's API starts and stops the kernel's daemons as the VRRP
/// state asks; `ipvsadm -L --daemon` and GET_DAEMON agree.
#[test]
#[ignore = "runs inside the IPVS VM: cargo xtask vm-test"]
fn sync_daemon_roles_show_in_ipvsadm() -> Result<()> {
    let _net = SyncNet::new()?;
    let genl = Genl::open().map_err(|e| anyhow::anyhow!("genl: {e}"))?;
    let mut p = SyncDaemonParams::new(MASTER_IF, 9);
    p.port = Some(8850);
    p.ttl = Some(2);
    let daemons = || -> Result<String> { ipvsadm(&["-L", "--daemon"]) };
    let has = |text: &str, kind: &str| {
        text.lines().any(|l| {
            l.starts_with(&format!("{kind} sync daemon"))
                && l.contains("mcast=l-sy")
                && l.contains("syncid=9")
                && l.contains("port=8850")
                && l.contains("ttl=2")
                && l.contains("group=224.0.0.81")
        })
    };

    sync_daemon::set_role(&genl, Role::Master, &p)?;
    let d = daemons()?;
    ensure!(has(&d, "master") && !d.contains("backup"), "{d}");
    // Again: nothing to do.
    ensure!(sync_daemon::set_role(&genl, Role::Master, &p)?.is_empty());

    let ops = sync_daemon::set_role(&genl, Role::Backup, &p)?;
    ensure!(
        ops == vec![
            DaemonOp::Stop(DaemonState::Master),
            DaemonOp::Start(DaemonState::Backup, p.clone())
        ],
        "{ops:?}"
    );
    let d = daemons()?;
    ensure!(has(&d, "backup") && !d.contains("master"), "{d}");

    sync_daemon::set_role(&genl, Role::Both, &p)?;
    let d = daemons()?;
    ensure!(has(&d, "backup") && has(&d, "master"), "{d}");
    // GET_DAEMON reads both back with the kernel's defaults filled in:
    // maxlen is a 1500-byte MTU less the IPv4 and UDP headers.
    let read = sync_daemon::daemons(&genl)?;
    ensure!(read.len() == 2, "{read:?}");
    for r in &read {
        ensure!(p.satisfied_by(&r.params), "{r:?}");
        ensure!(r.params.maxlen == Some(1472), "{r:?}");
    }

    sync_daemon::set_role(&genl, Role::None, &p)?;
    let d = daemons()?;
    ensure!(!d.contains("sync daemon"), "{d}");

    // A kernel refusal names the daemon and the interface.
    let err = sync_daemon::set_role(&genl, Role::Master, &SyncDaemonParams::new("nosuchif0", 1))
        .expect_err("no such interface");
    let msg = format!("{err:#}");
    if !(msg.contains("Master") && msg.contains("nosuchif0") && msg.contains("No such device")) {
        bail!("{msg}");
    }
    Ok(())
}
