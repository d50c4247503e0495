# Thin verbs over cargo. CI (.ci/run) calls these targets, so a local run does what CI does.
# `--locked` everywhere: Cargo.lock is committed and must already match Cargo.toml.
# Always build with `--workspace`: `-p` selections change feature sets and rebuild every SDK crate.

CARGO ?= cargo

.PHONY: build test check demo

build:
	$(CARGO) build --workspace --locked

test:
	$(CARGO) test --workspace --locked

check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# Replays the three situations in examples/demo/ offline with target/debug/vigil.
demo: build
	scripts/demo.sh
