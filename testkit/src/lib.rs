//! Test servers for tokenxchange, used only by its tests and never shipped: a Dex-compatible
//! token endpoint ([`Dex`]), a kube-apiserver stand-in for `kubectl auth whoami`
//! ([`ApiServer`]), a CONNECT proxy ([`Proxy`]), test PKI ([`Ca`]) and RS256 tokens
//! ([`SigningKey`], [`mint_sa_token`]). Every server listens on 127.0.0.1 with a port the
//! kernel picks, runs on std threads, and stops when dropped. Nothing here reaches the
//! network beyond the loopback interface.
//!
//! It is also the one home of what tests share: [`TempDir`], the claim readers
//! ([`claim_str`], [`claim_int`]), the clock ([`now`], [`rfc3339`], [`parse_rfc3339`]),
//! real kubectl ([`kubectls`], [`kubeconfig`], [`whoami`]), the operator policy's
//! fixed directory in a private mount namespace ([`PolicyDir`]), the cache's files
//! ([`files_with`], [`default_cache_dir`], [`mkfifo`]), and what a test needs from the
//! machine ([`program`], [`OTHER_UID`]), with [`skip`] when it is missing: a note on a
//! developer's machine, a failure under `CI=true`.

mod apiserver;
mod dex;
mod files;
mod http;
mod jwt;
mod kubectl;
mod machine;
mod pki;
mod policy_dir;
mod proxy;
mod temp_dir;
mod time;

pub use apiserver::{ApiServer, ApiServerConfig};
pub use dex::{Client, ClientAuth, Dex, DexConfig, Fault, Recorded};
pub use files::{copy_program, default_cache_dir, files_with, mkfifo};
pub use http::AlertServer;
pub use jwt::{SOURCE_ISSUER, SigningKey, claim_int, claim_str, decode_payload, mint_sa_token, mint_sa_token_at};
pub use kubectl::{
    Cluster, User, every_kubectl, exec_kubeconfig, kubeconfig, kubectls, newest_kubectl, outcome, token_kubeconfig,
    whoami, whoami_command,
};
pub use machine::{OTHER_UID, in_ci, need_program, program, skip};
pub use pki::{Ca, Identity, SelfSigned};
pub use policy_dir::{POLICY_PATH, PolicyDir};
pub use proxy::Proxy;
pub use temp_dir::TempDir;
pub use time::{now, parse_rfc3339, rfc3339};
