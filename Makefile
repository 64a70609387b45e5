# tokenxchange: build, test, demo, bench, release artefacts.
SHELL := /bin/bash
TARGET ?= x86_64-unknown-linux-musl
BIN := target/$(TARGET)/release/tokenxchange
CARGO ?= cargo

.PHONY: build demo test bench dist image clean

## build: the static, stripped release binary (fails unless `file` says statically linked);
## scripts/setup first adds what is missing (musl target, musl-gcc), silently otherwise
build:
	@TARGET=$(TARGET) scripts/setup build
	$(CARGO) build --locked --release --target $(TARGET) --bin tokenxchange
	@file $(BIN) | tee /dev/stderr | grep -q 'statically linked'
	@ls -l $(BIN) | awk '{ printf "size: %d bytes\n", $$5 }'

## demo: a real exchange against the local Dex stand-in, then kubectl auth whoami
demo: build
	$(CARGO) build --locked -p testkit --bin testkit
	scripts/demo $(BIN)

## test: formatting, lints, unit + integration + end-to-end tests (the scratch test runs
## the static build), deploy kit checks
test: build
	@TARGET=$(TARGET) scripts/setup test
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	TOKENXCHANGE_STATIC_BIN=$(abspath $(BIN)) $(CARGO) test --locked --workspace
	TOKENXCHANGE_BIN=$(abspath $(BIN)) scripts/check-deploy

## bench: exchange, cache hit and burst figures, side by side with curl
bench: build
	@TARGET=$(TARGET) scripts/setup bench
	$(CARGO) build --locked --release -p testkit --bin testkit
	scripts/bench $(BIN)

## dist: static binaries for x86_64 and aarch64 with sha256 sums in dist/
dist:
	scripts/dist

## image: container image FROM scratch for linux/amd64 and linux/arm64 from the `make dist`
## binaries, tagged $(IMAGE); docker buildx when it works, else buildah (PUSH=1 pushes)
IMAGE ?= tokenxchange:dev
PLATFORMS ?= linux/amd64,linux/arm64
image: dist
	IMAGE='$(IMAGE)' PLATFORMS='$(PLATFORMS)' scripts/build-image

clean:
	$(CARGO) clean
	rm -rf dist
