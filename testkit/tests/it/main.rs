//! testkit's own integration tests: the servers spoken to over real sockets by real
//! clients (curl, kubectl, the `testkit` binary), all on 127.0.0.1.

mod curl;
mod dex;
mod kubectl;
mod proxy;
mod serve;
