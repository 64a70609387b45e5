//! The small HTTP/1.1 server under the test Dex and the API server stand-in: it accepts on
//! 127.0.0.1, runs each connection on its own thread, terminates TLS, reads requests
//! (keep-alive, `Content-Length` or chunked bodies) and hands each one to a handler that
//! writes its own answer. A misbehaving client only ever ends its own connection. It never
//! knows what a route means; the servers built on it do.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// A request as read off the wire.
pub(crate) struct Request {
    pub method: String,
    /// Path including the query string.
    pub target: String,
    /// Names lowercased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the TLS client presented a certificate.
    pub client_cert: bool,
    /// Whether the client allows another request on this connection.
    pub keep_alive: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The path without the query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// What the connection does once the handler has answered.
pub(crate) enum After {
    /// Read the next request.
    KeepAlive,
    /// Close cleanly (TLS close_notify, then FIN).
    Close,
    /// Drop the socket at once, without a TLS close_notify.
    Abort,
}

impl After {
    pub fn from_keep_alive(keep_alive: bool) -> After {
        if keep_alive { After::KeepAlive } else { After::Close }
    }
}

/// A complete response with a body of known length.
pub(crate) struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, headers: vec![("Content-Type".into(), content_type.into())], body: body.into() }
    }

    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response::new(status, "application/json", body)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Writes status line, headers (plus `Content-Length`, and `Connection: close` when the
    /// connection ends after this response) and body; returns what the connection does next.
    pub fn send(&self, w: &mut dyn Write, keep_alive: bool) -> io::Result<After> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        if !keep_alive {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        w.write_all(head.as_bytes())?;
        w.write_all(&self.body)?;
        w.flush()?;
        Ok(After::from_keep_alive(keep_alive))
    }
}

pub(crate) type Handler = dyn Fn(&Request, &mut dyn Write) -> io::Result<After> + Send + Sync;

/// An accept loop on its own thread; dropping it stops accepting and joins that thread.
/// Connections already open finish on their own threads.
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Runs `serve` on a new thread for every accepted connection.
    pub fn start(listener: TcpListener, serve: impl Fn(TcpStream) + Send + Sync + 'static) -> Server {
        let addr = listener.local_addr().expect("listener address");
        let stop = Arc::new(AtomicBool::new(false));
        let serve = Arc::new(serve);
        let stopping = Arc::clone(&stop);
        let accept = thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let serve = Arc::clone(&serve);
                thread::spawn(move || serve(stream));
            }
        });
        Server { addr, stop, accept: Some(accept) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the loop sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// A TLS server of another age: it reads the ClientHello and answers with one fatal TLS
/// alert (`description`, e.g. 70 protocol_version, 40 handshake_failure), as a server
/// that speaks none of the client's versions or suites does. Stops when dropped.
pub struct AlertServer {
    server: Server,
    connections: Arc<AtomicUsize>,
}

impl AlertServer {
    pub fn start(description: u8) -> AlertServer {
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        let server = Server::start(bind(), move |mut tcp: TcpStream| {
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
            let mut hello = [0u8; 5];
            if tcp.read_exact(&mut hello).is_ok() {
                let _ = tcp.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, description]);
                let _ = tcp.flush();
            }
        });
        AlertServer { server, connections }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// How many connections it has accepted (each one answered with the alert).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Locks state that a server shares with its connection threads; a thread that panicked
/// while holding it leaves the state as it was, not a poisoned lock for the test to trip on.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A listener on 127.0.0.1 with a port chosen by the kernel.
pub(crate) fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

/// Serves one TLS connection: handshake (a failure just drops the socket), then requests
/// until the client or the handler ends the connection.
pub(crate) fn serve_tls(tcp: TcpStream, tls: Arc<ServerConfig>, handler: &Handler) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(30)));
    let Ok(mut conn) = ServerConnection::new(tls) else { return };
    let mut tcp = tcp;
    while conn.is_handshaking() {
        if conn.complete_io(&mut tcp).is_err() {
            return;
        }
    }
    let client_cert = conn.peer_certificates().is_some_and(|certs| !certs.is_empty());
    let mut reader = BufReader::new(StreamOwned::new(conn, tcp));
    loop {
        match serve_one(&mut reader, client_cert, handler) {
            Ok(After::KeepAlive) => continue,
            Ok(After::Close) => {
                let stream = reader.get_mut();
                stream.conn.send_close_notify();
                let _ = stream.flush();
                let _ = stream.sock.shutdown(Shutdown::Both);
                return;
            }
            Ok(After::Abort) | Err(_) => return,
        }
    }
}

/// Reads one request, lets the handler answer it. `Ok(After::Close)` on a clean end of
/// stream; a malformed request gets a 400 and closes.
fn serve_one<S: Read + Write>(reader: &mut BufReader<S>, client_cert: bool, handler: &Handler) -> io::Result<After> {
    let Some(head) = read_head(reader)? else { return Ok(After::Close) };
    let Some((method, target, version)) = parse_request_line(&head.0) else {
        return Response::new(400, "text/plain", "bad request line\n").send(reader.get_mut(), false);
    };
    let headers = head.1;
    if header(&headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        reader.get_mut().write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        reader.get_mut().flush()?;
    }
    let body = match read_body(reader, &headers) {
        Ok(body) => body,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return Response::new(400, "text/plain", format!("{e}\n")).send(reader.get_mut(), false);
        }
        Err(e) => return Err(e),
    };
    let connection = header(&headers, "connection").unwrap_or_default().to_ascii_lowercase();
    let keep_alive =
        if version == "HTTP/1.0" { connection.contains("keep-alive") } else { !connection.contains("close") };
    let request = Request { method, target, headers, body, client_cert, keep_alive };
    handler(&request, reader.get_mut())
}

/// The request (or status) line and the headers, names lowercased. `None` when the stream
/// ends before the first byte.
pub(crate) type Head = (String, Vec<(String, String)>);

const MAX_LINE: u64 = 64 * 1024;
const MAX_HEADERS: usize = 200;
const MAX_BODY: usize = 16 << 20;

pub(crate) fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut first = read_line(reader)?;
    // Tolerate stray empty lines before a request (RFC 9112 §2.2).
    while first.as_deref() == Some("") {
        first = read_line(reader)?;
    }
    let Some(first) = first else { return Ok(None) };
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(|| invalid("end of stream inside the headers"))?;
        if line.is_empty() {
            return Ok(Some((first, headers)));
        }
        let (name, value) = line.split_once(':').ok_or_else(|| invalid("header line without a colon"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        if headers.len() > MAX_HEADERS {
            return Err(invalid("too many headers"));
        }
    }
}

/// One line without its CRLF; `None` at end of stream.
fn read_line(reader: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = reader.take(MAX_LINE).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(invalid("line too long or cut short"));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

fn parse_request_line(line: &str) -> Option<(String, String, String)> {
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || method.is_empty() || target.is_empty() || !version.starts_with("HTTP/1.") {
        return None;
    }
    Some((method.into(), target.into(), version.into()))
}

fn read_body(reader: &mut impl BufRead, headers: &[(String, String)]) -> io::Result<Vec<u8>> {
    if header(headers, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        return read_chunked(reader);
    }
    let Some(length) = header(headers, "content-length") else { return Ok(Vec::new()) };
    let length: usize = length.parse().map_err(|_| invalid("bad content-length"))?;
    if length > MAX_BODY {
        return Err(invalid("body too large"));
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(body)
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader)?.ok_or_else(|| invalid("end of stream inside a chunked body"))?;
        let size = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while read_line(reader)?.is_some_and(|l| !l.is_empty()) {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        read_line(reader)?;
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

pub(crate) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` must be two hex digits. `None` on a bad
/// escape; bytes that are not UTF-8 are replaced.
pub(crate) fn query_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `url.ParseQuery`: pairs split on `&`, each side unescaped. Pairs that do not decode
/// (or hold a `;`) are skipped; the flag says whether any was.
pub(crate) fn parse_form(body: &[u8]) -> (Vec<(String, String)>, bool) {
    let text = String::from_utf8_lossy(body);
    let mut pairs = Vec::new();
    let mut ok = true;
    for part in text.split('&').filter(|p| !p.is_empty()) {
        if part.contains(';') {
            ok = false;
            continue;
        }
        let (key, value) = part.split_once('=').unwrap_or((part, ""));
        match (query_unescape(key), query_unescape(value)) {
            (Some(key), Some(value)) => pairs.push((key, value)),
            _ => ok = false,
        }
    }
    (pairs, ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_like_go() {
        assert_eq!(query_unescape("s3cr%2Bt%2F%3D%25%3Ax").as_deref(), Some("s3cr+t/=%:x"));
        assert_eq!(query_unescape("a+b").as_deref(), Some("a b"));
        assert_eq!(query_unescape("100%"), None);
        assert_eq!(query_unescape("%zz"), None);
        assert_eq!(query_unescape("%+1"), None);
    }

    #[test]
    fn parses_forms_in_order() {
        let (pairs, ok) = parse_form(b"a=1&b=x+y&a=%32&empty=&flag&bad=%g0");
        let expected = [("a", "1"), ("b", "x y"), ("a", "2"), ("empty", ""), ("flag", "")];
        assert_eq!(pairs, expected.map(|(k, v)| (k.to_string(), v.to_string())));
        assert!(!ok);
    }

    #[test]
    fn reads_heads_and_chunked_bodies() -> io::Result<()> {
        let raw = b"POST /x?y=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext\r\nde\r\n0\r\n\r\n";
        let mut reader = &raw[..];
        let (line, headers) = read_head(&mut reader)?.expect("a head");
        assert_eq!(parse_request_line(&line), Some(("POST".into(), "/x?y=1".into(), "HTTP/1.1".into())));
        assert_eq!(header(&headers, "Transfer-Encoding"), Some("chunked"));
        assert_eq!(read_body(&mut reader, &headers)?, b"abcde");
        assert!(read_head(&mut reader)?.is_none());
        Ok(())
    }
}
