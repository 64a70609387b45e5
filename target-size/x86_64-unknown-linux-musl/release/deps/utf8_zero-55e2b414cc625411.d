/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/utf8_zero-55e2b414cc625411.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/utf8-zero-0.8.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/utf8-zero-0.8.1/src/lossy.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/utf8-zero-0.8.1/src/read.rs

/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/libutf8_zero-55e2b414cc625411.rlib: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/utf8-zero-0.8.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/utf8-zero-0.8.1/src/lossy.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/utf8-zero-0.8.1/src/read.rs

/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/libutf8_zero-55e2b414cc625411.rmeta: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/utf8-zero-0.8.1/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/utf8-zero-0.8.1/src/lossy.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/utf8-zero-0.8.1/src/read.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/utf8-zero-0.8.1/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/utf8-zero-0.8.1/src/lossy.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/utf8-zero-0.8.1/src/read.rs:
