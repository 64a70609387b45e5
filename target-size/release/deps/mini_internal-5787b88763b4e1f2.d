/work/wt/setup/target-size/release/deps/mini_internal-5787b88763b4e1f2.d: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/attr.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/bound.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/de.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/fallback.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/ser.rs

/work/wt/setup/target-size/release/deps/libmini_internal-5787b88763b4e1f2.so: /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/lib.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/attr.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/bound.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/de.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/fallback.rs /root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/ser.rs

/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/lib.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/attr.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/bound.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/de.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/fallback.rs:
/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/mini-internal-0.1.46/src/ser.rs:

# env-dep:CARGO_PKG_VERSION_PATCH=46
