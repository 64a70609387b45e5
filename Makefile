# tokenxchange: build, test, demo, bench, release artefacts.
SHELL := /bin/bash
TARGET ?= x86_64-unknown-linux-musl
BIN := target/$(TARGET)/release/tokenxchange
CARGO ?= cargo
# What `tokenxchange --version` and the image labels say (scripts/revision), and HEAD's
# time for anything that would stamp one: every build below sees the same values.
export TOKENXCHANGE_BUILD_REVISION := $(shell scripts/revision)
export SOURCE_DATE_EPOCH := $(shell scripts/revision --epoch)

.PHONY: build demo test bench dist image licenses clean

## build: the static, stripped release binary (fails unless `file` says statically linked),
## with its dependency list embedded (cargo auditable) and the build paths remapped
## (scripts/release-build); scripts/setup first adds what is missing (musl target,
## musl-gcc, cargo-auditable), silently otherwise
build:
	@TARGET=$(TARGET) scripts/setup build
	scripts/release-build $(TARGET)
	@kind=$$(file $(BIN)) && echo "$$kind" && grep -q 'statically linked' <<<"$$kind"
	@ls -l $(BIN) | awk '{ printf "size: %d bytes\n", $$5 }'

## demo: a real exchange against the local Dex stand-in, then kubectl auth whoami
demo: build
	$(CARGO) build --locked -p testkit --bin testkit
	scripts/demo $(BIN)

## test: formatting, lints, unit + integration + end-to-end tests (the scratch test runs
## the static build), deploy kit checks, THIRD-PARTY-LICENSES up to date
test: build
	@TARGET=$(TARGET) scripts/setup test
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	TOKENXCHANGE_STATIC_BIN=$(abspath $(BIN)) $(CARGO) test --locked --workspace
	TOKENXCHANGE_BIN=$(abspath $(BIN)) scripts/check-deploy
	scripts/licenses --check

## bench: exchange, cache hit and burst figures, side by side with curl
bench: build
	@TARGET=$(TARGET) scripts/setup bench
	$(CARGO) build --locked --release -p testkit --bin testkit
	scripts/bench $(BIN)

## dist: static binaries for x86_64 and aarch64 in dist/, each with its CycloneDX SBOM,
## THIRD-PARTY-LICENSES, and the sha256 sums of all of them (see docs/release.md)
dist:
	scripts/dist

## image: container image FROM scratch for linux/amd64 and linux/arm64 from the `make dist`
## binaries, tagged $(IMAGE); docker buildx when it works, else buildah (PUSH=1 pushes)
IMAGE ?= tokenxchange:dev
PLATFORMS ?= linux/amd64,linux/arm64
image: dist
	IMAGE='$(IMAGE)' PLATFORMS='$(PLATFORMS)' scripts/build-image

## licenses: rewrite THIRD-PARTY-LICENSES after Cargo.lock changed (make test checks it)
licenses:
	scripts/licenses --write

clean:
	$(CARGO) clean
	rm -rf dist
