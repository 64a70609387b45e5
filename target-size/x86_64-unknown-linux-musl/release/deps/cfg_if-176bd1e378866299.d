/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/cfg_if-176bd1e378866299.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/libcfg_if-176bd1e378866299.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/libcfg_if-176bd1e378866299.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/cfg-if-1.0.5/src/lib.rs:
