/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/lexopt-948ef15faf4de856.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/lexopt-0.3.2/src/lib.rs

/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/liblexopt-948ef15faf4de856.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/lexopt-0.3.2/src/lib.rs

/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/liblexopt-948ef15faf4de856.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/lexopt-0.3.2/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/lexopt-0.3.2/src/lib.rs:
