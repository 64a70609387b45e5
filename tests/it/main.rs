//! Integration tests: the built binary against test servers on 127.0.0.1 (real HTTPS
//! with a test CA) and, where installed, real kubectl. One binary, a module per topic.

mod cache;
mod direct;
mod docs;
mod exchange;
mod hostile;
mod inspect;
mod install;
mod kubectl;
mod network;
mod policy;
mod security;
mod setup;
mod tls;
mod util;
