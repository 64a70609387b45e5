//! Test servers for tokenxchange, used only by its tests and never shipped: a Dex-compatible
//! token endpoint ([`Dex`]), a kube-apiserver stand-in for `kubectl auth whoami`
//! ([`ApiServer`]), a CONNECT proxy ([`Proxy`]), test PKI ([`Ca`]) and RS256 tokens
//! ([`SigningKey`], [`mint_sa_token`]). Every server listens on 127.0.0.1 with a port the
//! kernel picks, runs on std threads, and stops when dropped. Nothing here reaches the
//! network beyond the loopback interface.

mod apiserver;
mod dex;
mod http;
mod jwt;
mod pki;
mod proxy;

pub use apiserver::{ApiServer, ApiServerConfig};
pub use dex::{Client, ClientAuth, Dex, DexConfig, Fault, Recorded};
pub use http::AlertServer;
pub use jwt::{SOURCE_ISSUER, SigningKey, decode_payload, mint_sa_token, mint_sa_token_at};
pub use pki::{Ca, Identity};
pub use proxy::Proxy;
