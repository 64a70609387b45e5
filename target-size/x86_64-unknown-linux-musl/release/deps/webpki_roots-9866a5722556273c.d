/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/webpki_roots-9866a5722556273c.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/webpki-roots-1.0.10/src/lib.rs

/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/libwebpki_roots-9866a5722556273c.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/webpki-roots-1.0.10/src/lib.rs

/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/libwebpki_roots-9866a5722556273c.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/webpki-roots-1.0.10/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/webpki-roots-1.0.10/src/lib.rs:
