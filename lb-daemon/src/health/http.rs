//! HTTP_GET and SSL_GET: each `url { path }` is requested in turn; every one
//! must answer with an accepted status (`status_code`, 2xx by default) and,
//! when a `digest` is set, a body whose MD5 matches it (the body as
//! keepalived's genhash hashes it: the bytes after the headers, as sent).
//!
//! The request is HTTP/1.0 unless `http_protocol` says otherwise (`1.1` and
//! `1.0C` add `Connection: close`), with the virtual host as `Host` (else
//! the target's address and port). SSL_GET speaks TLS with rustls; as in
//! keepalived, the server's certificate is not verified unless a CA is
//! configured, and SNI carries the virtual host when `enable_sni` is set.
//!
//! Each url's exchange (connect, TLS handshake, request, response) must end
//! within `connect_timeout`.

use std::sync::{Arc, OnceLock};

use md5::{Digest, Md5};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use super::core::Outcome;
use super::plan::ProbeSpec;
use super::socket;
use crate::config::{CheckerKind, HttpCheck, Url};

/// Longest response head read before giving up on finding its end.
const MAX_HEAD: usize = 16 * 1024;

pub async fn probe(spec: &ProbeSpec) -> Outcome {
    let (check, tls) = match &spec.kind {
        CheckerKind::Http(h) => (h, None),
        CheckerKind::Ssl(h) => match &spec.ca {
            None => (h, Some(default_tls())),
            Some(ca) => match tls_for_ca_file(ca) {
                Ok(tls) => (h, Some(tls)),
                Err(e) => return Outcome::down(e),
            },
        },
        _ => return Outcome::down("not an HTTP checker"),
    };
    probe_with(spec, check, tls).await
}

/// The probe with a given TLS configuration (`None`: plain HTTP).
pub async fn probe_with(
    spec: &ProbeSpec,
    check: &HttpCheck,
    tls: Option<Arc<ClientConfig>>,
) -> Outcome {
    if check.urls.is_empty() {
        // Nothing to request: a connection is all that can be checked.
        return super::tcp::probe(spec).await;
    }
    for url in &check.urls {
        let exchange = fetch(spec, check, url, tls.clone());
        match timeout(spec.connect_timeout, exchange).await {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => return Outcome::down(format!("GET {}: {reason}", url.path)),
            Err(_) => {
                return Outcome::down(format!(
                    "GET {}: no complete answer from {} within {:?}",
                    url.path, spec.target, spec.connect_timeout
                ))
            }
        }
    }
    Outcome::up()
}

/// The request line and headers for `url`.
pub fn request(spec: &ProbeSpec, check: &HttpCheck, url: &Url) -> String {
    let minor = match check.http_protocol.as_deref() {
        Some("1.1") => 1,
        _ => 0,
    };
    let close = match check.http_protocol.as_deref() {
        Some("1.1") | Some("1.0C") => "Connection: close\r\n",
        _ => "",
    };
    let host = match url.virtualhost.as_ref().or(check.virtualhost.as_ref()) {
        Some(v) => v.clone(),
        None => spec.target.to_string(),
    };
    format!(
        "GET {} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {host}\r\n\r\n",
        url.path
    )
}

async fn fetch(
    spec: &ProbeSpec,
    check: &HttpCheck,
    url: &Url,
    tls: Option<Arc<ClientConfig>>,
) -> Result<(), String> {
    let stream = socket::connect(spec)
        .await
        .map_err(|e| socket::reason("connect to", spec.target, &e))?;
    let req = request(spec, check, url);
    match tls {
        None => exchange(stream, &req, url).await,
        Some(config) => {
            let vhost = url.virtualhost.as_ref().or(check.virtualhost.as_ref());
            let name = match vhost {
                Some(v) if check.enable_sni => ServerName::try_from(v.clone())
                    .map_err(|_| format!("virtualhost {v:?} is not a valid SNI name"))?,
                // An address as the name: rustls sends no SNI.
                _ => ServerName::IpAddress(spec.target.ip().into()),
            };
            let stream = TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS handshake with {}: {e}", spec.target))?;
            exchange(stream, &req, url).await
        }
    }
}

/// Sends the request and judges the response.
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    req: &str,
    url: &Url,
) -> Result<(), String> {
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    s.flush()
        .await
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err("response headers too long".into());
        }
        match read(&mut s, &mut chunk).await? {
            0 if buf.is_empty() => return Err("connection closed without a response".into()),
            0 => return Err("connection closed inside the response headers".into()),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let status = status_code(&head).ok_or_else(|| {
        format!(
            "not an HTTP response: {:?}",
            head.lines().next().unwrap_or("")
        )
    })?;
    if !status_accepted(status, &url.status_code) {
        return Err(format!("status {status}"));
    }
    let Some(want) = &url.digest else {
        return Ok(());
    };
    let length = content_length(&head);
    let mut md5 = Md5::new();
    let mut got = buf.len() - head_end;
    md5.update(&buf[head_end..]);
    while length.is_none_or(|l| got < l) {
        match read(&mut s, &mut chunk).await? {
            0 => break,
            n => {
                md5.update(&chunk[..n]);
                got += n;
            }
        }
    }
    let digest = hex(&md5.finalize());
    if &digest != want {
        return Err(format!("MD5 digest {digest}, expected {want}"));
    }
    Ok(())
}

/// A read where a TLS peer closing without close_notify counts as the end.
async fn read<S: AsyncRead + Unpin>(s: &mut S, buf: &mut [u8]) -> Result<usize, String> {
    match s.read(buf).await {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
        Err(e) => Err(format!("reading the response: {e}")),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn status_code(head: &str) -> Option<u16> {
    let line = head.lines().next()?;
    let mut words = line.split_whitespace();
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    words.next()?.parse().ok()
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().skip(1).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        if name.trim().eq_ignore_ascii_case("content-length") {
            value.trim().parse().ok()
        } else {
            None
        }
    })
}

/// keepalived accepts 200-299 when no `status_code` is given.
pub fn status_accepted(status: u16, ranges: &[(u16, u16)]) -> bool {
    if ranges.is_empty() {
        return (200..=299).contains(&status);
    }
    ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// MD5 of a body as lower-case hex, as genhash prints it.
pub fn digest_of(body: &[u8]) -> String {
    hex(&Md5::digest(body))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// keepalived's default: no certificate verification (the handshake's
/// signatures are still checked).
pub fn default_tls() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = provider();
            let config = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// The configuration verifying against the CA in `path` (PEM, one or more
/// certificates), read once per path. A CA that cannot be read fails the
/// check rather than skipping verification.
pub fn tls_for_ca_file(path: &std::path::Path) -> Result<Arc<ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use std::{collections::HashMap, path::PathBuf, sync::Mutex};
    type Cache = Mutex<HashMap<PathBuf, Result<Arc<ClientConfig>, String>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Cache::default);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .entry(path.to_path_buf())
        .or_insert_with(|| {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("SSL ca {}: {e}", path.display()))?
                .collect::<Result<_, _>>()
                .map_err(|e| format!("SSL ca {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!("SSL ca {}: no certificate in it", path.display()));
            }
            tls_with_ca(&certs)
        })
        .clone()
}

/// A configuration verifying the server's certificate against `ca`.
pub fn tls_with_ca(ca: &[CertificateDer<'static>]) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for c in ca {
        roots
            .add(c.clone())
            .map_err(|e| format!("CA certificate: {e}"))?;
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
