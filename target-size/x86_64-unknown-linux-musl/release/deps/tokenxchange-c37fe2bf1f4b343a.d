/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/tokenxchange-c37fe2bf1f4b343a.d: src/main.rs src/redact.rs src/arena.rs src/cache.rs src/claims.rs src/cli.rs src/error.rs src/exchange.rs src/exec_credential.rs src/form.rs src/get_token.rs src/http.rs src/inspect.rs src/install.rs src/proxy.rs src/stdout.rs src/time.rs src/tls.rs src/token.rs src/url.rs

/work/wt/setup/target-size/x86_64-unknown-linux-musl/release/deps/tokenxchange-c37fe2bf1f4b343a: src/main.rs src/redact.rs src/arena.rs src/cache.rs src/claims.rs src/cli.rs src/error.rs src/exchange.rs src/exec_credential.rs src/form.rs src/get_token.rs src/http.rs src/inspect.rs src/install.rs src/proxy.rs src/stdout.rs src/time.rs src/tls.rs src/token.rs src/url.rs

src/main.rs:
src/redact.rs:
src/arena.rs:
src/cache.rs:
src/claims.rs:
src/cli.rs:
src/error.rs:
src/exchange.rs:
src/exec_credential.rs:
src/form.rs:
src/get_token.rs:
src/http.rs:
src/inspect.rs:
src/install.rs:
src/proxy.rs:
src/stdout.rs:
src/time.rs:
src/tls.rs:
src/token.rs:
src/url.rs:

# env-dep:CARGO_PKG_VERSION=0.1.0
