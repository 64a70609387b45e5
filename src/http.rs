//! The only module that opens sockets: one HTTPS request per call, through ureq with
//! rustls on ring, with the roots, client certificate and proxy the caller chose. It
//! chains ureq's connectors (proxy tunnel, TCP, then TLS from `tls`'s config, following
//! ureq's `unversioned` transport API, pinned by `Cargo.lock`) and resolves names itself,
//! refusing a plain `http://` connection to any address off loopback.
//!
//! It owns the response size limit and sorts failures without an answer into their kinds
//! (`NetFailure`, and `TlsFailure` through `tls::describe`), so a user reads "server
//! certificate not trusted" rather than "Broken pipe". It never retries (see `exchange`)
//! and never logs bodies. URLs arrive parsed and checked (`url::Url`).

use std::fmt;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector,
    Transport, TransportAdapter,
};

use crate::error::{Error, NetFailure};
use crate::redact;
use crate::secret::Secret;
use crate::tls;
use crate::url::Url;

/// Bodies larger than this are refused without reading further.
const MAX_BODY: u64 = 1 << 20;
/// ureq's input and output buffers, per transport (TCP and TLS): one TLS record (16 KiB
/// plus overhead) fits, and so does an answer's head. ureq's default, 128 KiB each, is
/// zero-filled on every run and was half the CPU of an exchange.
const BUFFER: usize = 18 * 1024;
/// An answer's status line and headers must fit in the input buffer; a larger head is
/// refused as "response header is too big" rather than read as a closed connection.
const MAX_HEAD: usize = 16 * 1024;
/// A `Retry-After` beyond this many seconds is read as this (it ends the run anyway).
const MAX_RETRY_AFTER: u64 = 3600;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Retry-After` in seconds, when the server sent one.
    pub retry_after: Option<Duration>,
    /// The server's `Date` header, in Unix seconds.
    pub date: Option<i64>,
}

/// An agent for one URL: its TLS settings and the proxy chosen for it.
pub struct Client {
    agent: ureq::Agent,
    /// The proxy, user info masked, for messages.
    proxy: Option<String>,
    given_ca: bool,
    tls_version: VersionSlot,
}

impl Client {
    /// The TLS version of the last connection, once its handshake is done.
    pub fn tls_version(&self) -> Option<&'static str> {
        *self.tls_version.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Builds a client for `url`: TLS as configured (see `tls`), and the proxy the caller
/// chose (`http://[user:pass@]host:port`, see `proxy`); environment proxies are not read
/// here. For a plain `http://` URL to this machine, every address the host name resolves
/// to must be a loopback address, or nothing is sent.
pub fn client(tls: &tls::Client, proxy: Option<&str>, url: &Url) -> Result<Client, Error> {
    let proxy = match proxy {
        Some(url) => Some((
            ureq::Proxy::new(url)
                .map_err(|_| Error::Usage(format!("invalid proxy URL {}", crate::proxy::masked(url))))?,
            crate::proxy::masked(url),
        )),
        None => None,
    };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .https_only(false)
        .max_redirects(0)
        .proxy(proxy.as_ref().map(|(proxy, _)| proxy.clone()))
        .user_agent(concat!("tokenxchange/", env!("CARGO_PKG_VERSION")))
        .accept("application/json")
        .max_idle_connections(0)
        .input_buffer_size(BUFFER)
        .output_buffer_size(BUFFER)
        .max_response_header_size(MAX_HEAD)
        .build();
    let tls_version = VersionSlot::default();
    let connector =
        ().chain(ConnectProxyConnector::default())
            .chain(TcpConnector::default())
            .chain(TlsConnector { config: tls.config.clone(), version: tls_version.clone() });
    Ok(Client {
        agent: ureq::Agent::with_parts(
            config,
            connector,
            LiteralFirst {
                inner: DefaultResolver::default(),
                loopback_only: url.transport() == crate::url::Transport::LoopbackHttp,
            },
        ),
        proxy: proxy.map(|(_, masked)| masked),
        given_ca: tls.given_ca,
        tls_version,
    })
}

/// Takes an IP address in the URL as it is; hands host names to ureq's resolver, which
/// looks them up on a thread of its own so that `--timeout` bounds the lookup. With
/// `loopback_only`, an answer holding any address off loopback is refused before a
/// connection is made (an `/etc/hosts` that maps `localhost` elsewhere).
#[derive(Debug)]
struct LiteralFirst {
    inner: DefaultResolver,
    loopback_only: bool,
}

/// A plain `http://` host name that resolved to an address off loopback.
#[derive(Debug)]
struct NotLoopback(std::net::IpAddr);

impl fmt::Display for NotLoopback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not a loopback address", self.0)
    }
}

impl std::error::Error for NotLoopback {}

/// The lookup's thread could not start (`pthread_create` failed: memory or the thread
/// limit ran out).
#[derive(Debug)]
struct NoThread(io::Error);

impl fmt::Display for NoThread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot start the name lookup's thread: {}", self.0)
    }
}

impl std::error::Error for NoThread {}

impl Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or_default();
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        let addrs = match (host.parse::<std::net::IpAddr>(), port) {
            (Ok(ip), Some(port)) => {
                let mut addrs = self.inner.empty();
                addrs.push(std::net::SocketAddr::new(ip, port));
                addrs
            }
            (Err(_), Some(port)) => lookup(&self.inner, host, port, timeout)?,
            _ => self.inner.resolve(uri, config, timeout)?,
        };
        if self.loopback_only
            && let Some(off) = addrs.iter().find(|addr| !addr.ip().to_canonical().is_loopback())
        {
            return Err(ureq::Error::Io(io::Error::other(NotLoopback(off.ip()))));
        }
        Ok(addrs)
    }
}

/// Looks `host` up on a thread of its own, waiting no longer than `timeout` (as ureq's
/// resolver does), but a thread that cannot start is an error, where ureq's would panic
/// (SIGABRT under a small memory limit).
fn lookup(
    resolver: &DefaultResolver,
    host: &str,
    port: u16,
    timeout: NextTimeout,
) -> Result<ResolvedSocketAddrs, ureq::Error> {
    use std::net::ToSocketAddrs;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let name = host.to_owned();
    std::thread::Builder::new()
        .spawn(move || tx.send((name.as_str(), port).to_socket_addrs()).ok())
        .map_err(|err| ureq::Error::Io(io::Error::other(NoThread(err))))?;
    let found = match rx.recv_timeout(*timeout.after) {
        Ok(found) => found?,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return Err(ureq::Error::Timeout(timeout.reason)),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            return Err(ureq::Error::Io(io::Error::other("the name lookup ended without an answer")));
        }
    };
    let mut addrs = resolver.empty();
    // As ureq's resolver does, the first addresses that fit (16) are the ones tried.
    for addr in found {
        if addrs.try_push(addr).is_err() {
            break;
        }
    }
    if addrs.is_empty() { Err(ureq::Error::HostNotFound) } else { Ok(addrs) }
}

/// POSTs a form body. `timeout` bounds the whole call, connect to last body byte.
pub fn post_form(
    client: &Client,
    url: &Url,
    authorization: &Secret,
    body: &str,
    timeout: Duration,
) -> Result<Response, Error> {
    let request = client
        .agent
        .post(url.as_str())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Authorization", authorization.expose())
        .config()
        .output_buffer_size(head_room(url, authorization.expose()))
        .timeout_global(Some(timeout))
        .build();
    finish(client, url, request.send(body))
}

/// GETs a document (OpenID discovery).
pub fn get(client: &Client, url: &Url, timeout: Duration) -> Result<Response, Error> {
    let request = client
        .agent
        .get(url.as_str())
        .config()
        .output_buffer_size(head_room(url, ""))
        .timeout_global(Some(timeout))
        .build();
    finish(client, url, request.call())
}

/// The output buffer must hold the request's head: [`BUFFER`], or more for a URL or
/// client secret (in `Authorization`) of many KiB.
fn head_room(url: &Url, authorization: &str) -> usize {
    BUFFER.max(url.as_str().len() + authorization.len() + 1024)
}

fn finish(
    client: &Client,
    url: &Url,
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Response, Error> {
    let mut response = result.map_err(|err| failure(client, url, err))?;
    let status = response.status().as_u16();
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let retry_after = header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .map(|secs| Duration::from_secs(secs.min(MAX_RETRY_AFTER)));
    let date = header("date").and_then(crate::time::http_date);
    let body = match response.body_mut().with_config().limit(MAX_BODY).read_to_vec() {
        Ok(body) => body,
        // An oversized error page still tells the status; an oversized success is unusable.
        Err(ureq::Error::BodyExceedsLimit(_)) if !(200..=299).contains(&status) => {
            format!("(body larger than {} KiB)", MAX_BODY / 1024).into_bytes()
        }
        Err(ureq::Error::BodyExceedsLimit(_)) => {
            return Err(Error::BadResponse {
                url: url.to_string(),
                status,
                reason: format!("body larger than {} KiB; refused", MAX_BODY / 1024),
            });
        }
        Err(err) => return Err(failure(client, url, err)),
    };
    Ok(Response { status, body, retry_after, date })
}

/// Sorts a failure without an HTTP answer into its kind, naming the proxy when one was used.
fn failure(client: &Client, url: &Url, err: ureq::Error) -> Error {
    let network = |failure: NetFailure| Error::Network { url: url.to_string(), proxy: client.proxy.clone(), failure };
    match err {
        ureq::Error::Timeout(_) => network(NetFailure::Timeout),
        ureq::Error::HostNotFound => network(NetFailure::Dns(String::new())),
        ureq::Error::ConnectionFailed => network(NetFailure::Other("connection failed".into())),
        ureq::Error::ConnectProxyFailed(why) => Error::Proxy {
            url: url.to_string(),
            proxy: client.proxy.clone().unwrap_or_default(),
            reason: format!("the proxy refused the CONNECT tunnel: {}", redact::echo(why.as_bytes(), 200)),
        },
        ureq::Error::Io(err) => {
            if let Some(NotLoopback(ip)) = err.get_ref().and_then(|inner| inner.downcast_ref::<NotLoopback>()) {
                return Error::Usage(format!(
                    "refusing {}: {} resolves to {ip}, which is not a loopback address; plain http:// goes only to 127.0.0.0/8 and ::1 (use https://)",
                    redact::echo(url.as_str().as_bytes(), 200),
                    redact::echo(url.host().as_bytes(), 100)
                ));
            }
            if let Some(NoThread(why)) = err.get_ref().and_then(|inner| inner.downcast_ref::<NoThread>()) {
                return crate::error::exhausted(why).unwrap_or_else(|| {
                    Error::Runtime(format!(
                        "cannot start the name lookup's thread: {why} (memory or the thread limit ran out)"
                    ))
                });
            }
            if let Some(exhausted) = crate::error::exhausted(&err) {
                return exhausted;
            }
            match err.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                Some(tls) => Error::Tls { url: url.to_string(), failure: tls::describe(tls, client.given_ca) },
                None => network(io_failure(&err)),
            }
        }
        ureq::Error::Protocol(err) => network(NetFailure::Malformed(redact::echo(err.to_string().as_bytes(), 200))),
        other => network(NetFailure::Other(redact::echo(other.to_string().as_bytes(), 200))),
    }
}

fn io_failure(err: &io::Error) -> NetFailure {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => NetFailure::Refused,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => NetFailure::Timeout,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionAborted => NetFailure::Closed,
        // The system resolver's failure arrives as a plain I/O error: this is the one place
        // its words are read, to give it its kind.
        _ if err.to_string().contains("failed to lookup address") => {
            NetFailure::Dns(redact::echo(err.to_string().as_bytes(), 200))
        }
        _ => NetFailure::Other(redact::echo(err.to_string().as_bytes(), 200)),
    }
}

/// The TLS version of a connection, once its handshake is done (for `inspect`).
type VersionSlot = Arc<std::sync::Mutex<Option<&'static str>>>;

/// Wraps the chained transport in TLS when the URL is `https://`.
#[derive(Debug)]
struct TlsConnector {
    config: Arc<ClientConfig>,
    version: VersionSlot,
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else { return Ok(None) };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details.uri.host().unwrap_or_default();
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        let name = ServerName::try_from(host.to_string()).map_err(|_| ureq::Error::Tls("invalid server name"))?;
        let connection = ClientConnection::new(self.config.clone(), name)
            .map_err(|err| ureq::Error::Io(std::io::Error::other(err)))?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        let stream = StreamOwned {
            conn: connection,
            sock: TransportAdapter::new(transport.boxed(), details.current_time.clone()),
        };
        Ok(Some(Either::B(TlsTransport { buffers, stream, version: self.version.clone() })))
    }
}

struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
    version: VersionSlot,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsTransport")
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        self.stream.write_all(&self.buffers.output()[..amount])?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let amount = self.stream.read(self.buffers.input_append_buf())?;
        self.buffers.input_appended(amount);
        if let Some(version) = self.stream.conn.protocol_version() {
            let name = match version {
                rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3",
                rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2",
                _ => "TLS",
            };
            *self.version.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(name);
        }
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_failures_get_their_kind() {
        let err = io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(
            io_failure(&err),
            NetFailure::Dns("failed to lookup address information: Name or service not known".into())
        );
        assert_eq!(io_failure(&io::Error::from(io::ErrorKind::ConnectionRefused)), NetFailure::Refused);
        assert_eq!(io_failure(&io::Error::from(io::ErrorKind::BrokenPipe)), NetFailure::Closed);
        assert_eq!(io_failure(&io::Error::from(io::ErrorKind::TimedOut)), NetFailure::Timeout);
    }
}
