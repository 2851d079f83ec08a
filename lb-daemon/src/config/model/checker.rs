//! The health checkers of a real server: TCP_CHECK, HTTP_GET, SSL_GET,
//! MISC_CHECK, SMTP_CHECK, DNS_CHECK, UDP_CHECK.

use std::net::IpAddr;
use std::time::Duration;

use serde::Serialize;

use super::{ser_duration, ser_opt_duration, Location, ScriptUser};

/// A health checker with every timing resolved through the real server and
/// virtual server defaults, as keepalived does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checker {
    pub kind: CheckerKind,
    pub connect_ip: Option<IpAddr>,
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
    pub bind_if: Option<String>,
    pub fwmark: Option<u32>,
    #[serde(serialize_with = "ser_duration")]
    pub connect_timeout: Duration,
    pub retry: u32,
    #[serde(serialize_with = "ser_duration")]
    pub delay_before_retry: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub warmup: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub delay_loop: Duration,
    pub alpha: bool,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum CheckerKind {
    #[serde(rename = "TCP_CHECK")]
    Tcp,
    #[serde(rename = "HTTP_GET")]
    Http(HttpCheck),
    #[serde(rename = "SSL_GET")]
    Ssl(HttpCheck),
    #[serde(rename = "MISC_CHECK")]
    Misc(MiscCheck),
    #[serde(rename = "SMTP_CHECK")]
    Smtp(SmtpCheck),
    #[serde(rename = "DNS_CHECK")]
    Dns(DnsCheck),
    #[serde(rename = "UDP_CHECK")]
    Udp(UdpCheck),
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct HttpCheck {
    pub urls: Vec<Url>,
    pub virtualhost: Option<String>,
    pub http_protocol: Option<String>,
    pub enable_sni: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Url {
    pub path: String,
    /// MD5 digest of the body, lower-case hex.
    pub digest: Option<String>,
    /// Accepted status codes as inclusive ranges; keepalived accepts
    /// 200-299 when none is given.
    pub status_code: Vec<(u16, u16)>,
    pub virtualhost: Option<String>,
    #[serde(skip)]
    pub location: Location,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MiscCheck {
    pub misc_path: String,
    /// `None`: keepalived uses the checker's delay_loop.
    #[serde(serialize_with = "ser_opt_duration")]
    pub misc_timeout: Option<Duration>,
    pub misc_dynamic: bool,
    pub user: Option<ScriptUser>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmtpCheck {
    pub helo_name: String,
    /// Extra hosts to check (each is a connection block of its own).
    pub hosts: Vec<SmtpHost>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SmtpHost {
    pub connect_ip: Option<IpAddr>,
    pub connect_port: Option<u16>,
    pub bindto: Option<IpAddr>,
    pub bind_port: Option<u16>,
    #[serde(serialize_with = "ser_opt_duration")]
    pub connect_timeout: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsCheck {
    /// Query type, upper case (`SOA` by default).
    #[serde(rename = "query_type")]
    pub qtype: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct UdpCheck {
    /// Hex-decoded payload bytes, as hex text.
    pub payload: Option<String>,
    pub require_reply: bool,
    pub min_reply_length: Option<u32>,
    pub max_reply_length: Option<u32>,
}
