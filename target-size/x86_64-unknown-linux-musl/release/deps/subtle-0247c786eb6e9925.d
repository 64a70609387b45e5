/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/subtle-0247c786eb6e9925.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/subtle-2.6.1/src/lib.rs

/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/libsubtle-0247c786eb6e9925.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/subtle-2.6.1/src/lib.rs

/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/libsubtle-0247c786eb6e9925.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/subtle-2.6.1/src/lib.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/subtle-2.6.1/src/lib.rs:
