# syntax=docker/dockerfile:1
#
# tokenxchange image: one static musl binary at /tokenxchange on an empty root, and the
# licences of what it links at /licenses/THIRD-PARTY-LICENSES.
#
# Nothing is compiled here: the image is assembled from the release binaries
# that `make dist` leaves in dist/amd64/tokenxchange and
# dist/arm64/tokenxchange (cargo-zigbuild, no Docker needed), with their
# dependency list embedded (cargo auditable: scanners read it from the binary),
# and dist/THIRD-PARTY-LICENSES. Then either
#
#   make image                                  # docker buildx, else buildah
#   docker buildx build --platform linux/amd64,linux/arm64 -t IMAGE:TAG .
#   buildah bud --platform linux/amd64,linux/arm64 --manifest IMAGE:TAG .
#
# No base image is pulled (FROM scratch) and no RUN step exists, so building
# the arm64 image on an amd64 host needs no emulation.

FROM scratch

# Set by the builder from --platform: amd64 or arm64.
ARG TARGETARCH
ARG VERSION=0.1.0
# scripts/revision's value, as `tokenxchange --version` prints it: HEAD, with
# -dirty when tracked files had uncommitted changes.
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tokenxchange" \
      org.opencontainers.image.description="client-go exec credential plugin: exchanges a Kubernetes ServiceAccount token at Dex (RFC 8693) for an ID token" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="scratch"

# The TLS roots are compiled into the binary: the image needs no /etc/ssl.
COPY --chmod=0755 dist/${TARGETARCH}/tokenxchange /tokenxchange
COPY --chmod=0644 dist/THIRD-PARTY-LICENSES /licenses/THIRD-PARTY-LICENSES

# Distroless "nonroot"; in Argo CD pods the init container sets it explicitly.
USER 65532:65532
ENTRYPOINT ["/tokenxchange"]
