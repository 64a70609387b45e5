//! A plain-HTTP forward proxy on 127.0.0.1 that only speaks `CONNECT`, optionally behind
//! Basic proxy authentication, and counts the tunnels it opens. It tunnels only to
//! loopback targets (`127.x.y.z`, `[::1]`, `localhost`), so a test can never leave the
//! machine through it, and it never looks inside a tunnel.

use std::io::{self, BufReader, Write};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::http::{self, Server, lock};

/// A running CONNECT proxy; dropping it stops accepting (open tunnels run to their end).
pub struct Proxy {
    state: Arc<State>,
    server: Server,
}

struct State {
    /// The expected `user:password`, when authentication is required.
    credentials: Option<String>,
    tunnels: AtomicUsize,
    requests: Mutex<Vec<String>>,
}

impl Proxy {
    /// With `Some((user, password))`, requires `Proxy-Authorization: Basic` and answers 407
    /// with `Proxy-Authenticate` otherwise.
    pub fn start(credentials: Option<(String, String)>) -> Proxy {
        let state = Arc::new(State {
            credentials: credentials.map(|(user, password)| format!("{user}:{password}")),
            tunnels: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let connection_state = Arc::clone(&state);
        let server = Server::start(http::bind(), move |tcp| {
            let _ = serve(&connection_state, tcp);
        });
        Proxy { state, server }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// How many tunnels were established.
    pub fn tunnels(&self) -> usize {
        self.state.tunnels.load(Ordering::SeqCst)
    }

    /// Every CONNECT target (`host:port`), refused ones included, in order.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.state.requests).clone()
    }
}

fn serve(state: &State, client: TcpStream) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client);
    let Some((line, headers)) = http::read_head(&mut reader)? else { return Ok(()) };
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if method != "CONNECT" {
        return refuse(reader.get_mut(), 405, &[("Allow", "CONNECT")]);
    }
    lock(&state.requests).push(target.to_string());
    if let Some(expected) = &state.credentials {
        let given = http::header(&headers, "proxy-authorization").and_then(basic);
        if given.as_deref() != Some(expected.as_str()) {
            return refuse(reader.get_mut(), 407, &[("Proxy-Authenticate", r#"Basic realm="testkit""#)]);
        }
    }
    if !is_loopback(target) {
        return refuse(reader.get_mut(), 403, &[]);
    }
    let Ok(upstream) = TcpStream::connect(target) else {
        return refuse(reader.get_mut(), 502, &[]);
    };
    reader.get_mut().write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")?;
    state.tunnels.fetch_add(1, Ordering::SeqCst);
    reader.get_ref().set_read_timeout(None)?;
    tunnel(reader, upstream)
}

/// Copies both ways until each side has finished sending.
fn tunnel(mut client: BufReader<TcpStream>, mut upstream: TcpStream) -> io::Result<()> {
    // Bytes the client sent right after its CONNECT head are already buffered.
    upstream.write_all(client.buffer())?;
    let mut client_out = client.get_ref().try_clone()?;
    let mut upstream_in = upstream.try_clone()?;
    let down = thread::spawn(move || {
        let _ = io::copy(&mut upstream_in, &mut client_out);
        let _ = client_out.shutdown(Shutdown::Write);
    });
    let _ = io::copy(client.get_mut(), &mut upstream);
    let _ = upstream.shutdown(Shutdown::Write);
    let _ = down.join();
    Ok(())
}

fn refuse(w: &mut TcpStream, status: u16, headers: &[(&str, &str)]) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", http::reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Content-Length: 0\r\nConnection: close\r\n\r\n");
    w.write_all(head.as_bytes())?;
    w.flush()
}

/// The decoded `user:password` of a `Basic` credential.
fn basic(value: &str) -> Option<String> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()
}

/// Whether `host:port` names this machine, without asking any resolver.
fn is_loopback(target: &str) -> bool {
    let Some((host, port)) = target.rsplit_once(':') else { return false };
    if port.parse::<u16>().is_err() {
        return false;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tunnels_only_to_loopback() {
        assert!(is_loopback("127.0.0.1:443"));
        assert!(is_loopback("localhost:8443"));
        assert!(is_loopback("[::1]:443"));
        assert!(!is_loopback("10.0.0.1:443"));
        assert!(!is_loopback("example.com:443"));
        assert!(!is_loopback("127.0.0.1"));
    }
}
