# Thin verbs over cargo. CI (.ci/run) calls these targets, so a local run does what CI does.
# `--locked` everywhere: Cargo.lock is committed and must already match Cargo.toml.
# Always build with `--workspace`: `-p` selections change feature sets and rebuild every SDK crate.

CARGO ?= cargo

.PHONY: build test check demo venv local-aws local-aws-stop

# The repo-local Python venv with the pinned local AWS (moto + vigil's extension) and the Slack
# stand-in. Tests start their own servers from it on free loopback ports.
VENV := .venv
PYTHON ?= python3

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check --quiet --requirement requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# Start the local AWS and the Slack stand-in in the background for manual use
# (`source target/localaws/env` points the AWS CLI / SDK at them); stop them again.
local-aws: venv
	localaws/run.sh start

local-aws-stop:
	localaws/run.sh stop

build:
	$(CARGO) build --workspace --locked

test: venv
	$(CARGO) test --workspace --locked
	localaws/run.sh test

check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# Replays the three situations in examples/demo/ offline with target/debug/vigil.
demo: build
	scripts/demo.sh
