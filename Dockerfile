# syntax=docker/dockerfile:1
#
# tokenxchange image: one static musl binary at /tokenxchange on an empty root.
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t IMAGE:TAG .
#
# The builder stage always runs on the build host's platform ($BUILDPLATFORM)
# and cross-compiles for $TARGETARCH with cargo-zigbuild: zig is the C
# compiler and linker for ring's C/assembly parts and links against zig's own
# musl, so no per-target cross toolchain (and no QEMU) is needed. The same
# commands build both architectures, on an amd64 or an arm64 host.

ARG RUST_VERSION=1.89

FROM --platform=$BUILDPLATFORM rust:${RUST_VERSION}-bookworm AS builder

# Pinned build tools: zig from PyPI (ziglang wheel), cargo-zigbuild from crates.io.
ARG ZIGLANG_VERSION=0.14.1
ARG CARGO_ZIGBUILD_VERSION=0.24.1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# python3-pip only installs the ziglang wheel; Debian's versions are not
# pinned on purpose (the bookworm point releases replace them).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-pip \
 && rm -rf /var/lib/apt/lists/* \
 && pip3 install --no-cache-dir --break-system-packages "ziglang==${ZIGLANG_VERSION}" \
 && cargo install --locked "cargo-zigbuild@${CARGO_ZIGBUILD_VERSION}" \
 && rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl

WORKDIR /src

# Only what the build reads; .dockerignore keeps target/ and .git out.
COPY Cargo.toml Cargo.lock ./
COPY .cargo ./.cargo
COPY src ./src
COPY testkit ./testkit

# Set by buildx from --platform (amd64 or arm64).
ARG TARGETARCH
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    case "${TARGETARCH}" in \
      amd64) target=x86_64-unknown-linux-musl ;; \
      arm64) target=aarch64-unknown-linux-musl ;; \
      *) echo "unsupported TARGETARCH=${TARGETARCH} (amd64, arm64)" >&2; exit 1 ;; \
    esac \
 && cargo zigbuild --locked --release --package tokenxchange --target "${target}" \
 && install -D -m 0755 "target/${target}/release/tokenxchange" /out/tokenxchange

FROM scratch

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tokenxchange" \
      org.opencontainers.image.description="client-go exec credential plugin: exchanges a Kubernetes ServiceAccount token at Dex (RFC 8693) for an ID token" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="scratch"

# The TLS roots are compiled into the binary: the image needs no /etc/ssl.
COPY --from=builder /out/tokenxchange /tokenxchange

# Distroless "nonroot"; in Argo CD pods the init container sets it explicitly.
USER 65532:65532
ENTRYPOINT ["/tokenxchange"]
