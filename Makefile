# Thin verbs over cargo. CI (.ci/run) calls these targets, so a local run does what CI does.
# `--locked` everywhere: Cargo.lock is committed and must already match Cargo.toml.
# Always build with `--workspace`: `-p` selections change feature sets and rebuild every SDK crate.

CARGO ?= cargo

.PHONY: build build-dev build-venv test faults check demo venv local-aws local-aws-stop validate deploy

# The repo-local Python venv with the pinned local AWS (moto + vigil's extension), the Slack
# stand-in and cargo-lambda for `cargo lambda watch`. Tests start their own servers from it on
# free loopback ports. Every requirement is pinned with its hashes (--require-hashes).
VENV := .venv
PYTHON ?= python3

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check --quiet --require-hashes --requirement requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

# The release build tools alone (cargo-lambda and zig, requirements-build.txt, hashed), in a venv
# of their own: the binaries that ship are not built in the environment of the test stand-ins.
BUILD_VENV := target/build-venv

$(BUILD_VENV)/.installed: requirements-build.txt
	$(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/pip install --disable-pip-version-check --quiet --require-hashes --requirement requirements-build.txt
	touch $@

build-venv: $(BUILD_VENV)/.installed

# Start the local AWS and the Slack stand-in in the background for manual use
# (`source target/localaws/env` points the AWS CLI / SDK at them); stop them again.
local-aws: venv
	localaws/run.sh start

local-aws-stop:
	localaws/run.sh stop

# The debug build of everything (binaries, tests, examples) for this machine. `--all-targets` makes
# cargo resolve features exactly as `cargo test --workspace` does, so the two share one set of
# compiled dependencies instead of building every SDK crate twice.
build-dev:
	$(CARGO) build --workspace --all-targets --locked

# `cargo test --workspace` also builds every function binary (each has integration tests), which the
# end-to-end test then runs under `cargo lambda watch`.
test: venv
	$(CARGO) test --workspace --locked
	localaws/run.sh test
	$(MAKE) faults

# The fault matrix (RELIABILITY.md, "Fault injection"): every dependency of handle-alarm x
# {timeout, 5xx, throttling, malformed} against the built binary; prints the table and
# writes it to target/fault-matrix.md. About 3 minutes; `make test` (and so CI) runs it. The
# build comes first: the matrix runs the built binary, and `cargo test --test` builds no binary.
faults: venv build-dev
	$(CARGO) test --workspace --locked --test fault_matrix -- --ignored --nocapture

check:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

# libFuzzer over every input parser for FUZZ_SECONDS each; fails on any crash (RELIABILITY.md,
# "Fuzzing"). Installs the pinned cargo-fuzz into target/tools on first use. Not in CI.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) CARGO=$(CARGO) scripts/fuzz.sh $(FUZZ_TARGETS)

# Replays the three situations in examples/demo/ offline with target/debug/vigil.
demo: build-dev
	scripts/demo.sh

# Criterion benchmarks of the pure pipeline, per input family (BENCHMARKS.md, "Pure pipeline"). Not in CI.
.PHONY: bench
bench:
	$(CARGO) bench --locked -p vigil-core --bench pipeline

# Lints and security-checks template.yaml offline (cfn-lint + serverless rules, the SAM transform,
# an IAM guard, checkov) with the pinned tools of requirements-validate.txt (own venv: target/validate-venv).
validate:
	scripts/validate.sh

# Cross-compiles the Lambda functions for arm64 (target/lambda/<name>/bootstrap); cargo-lambda and zig
# come from the build venv (target/build-venv, not .venv), and the aarch64-unknown-linux-gnu standard
# library must be installed (docs/DEPLOY.md).
build: build-venv
	PATH="$(CURDIR)/$(BUILD_VENV)/bin:$$PATH" $(CARGO) lambda build --release --arm64 --locked --bin handle-alarm --bin handle-event --bin slack-actions

# Validates, then `sam build` (with the build venv's cargo-lambda) and `sam deploy --guided`
# (docs/DEPLOY.md).
deploy: build-venv
	scripts/deploy.sh

# Whole-process figures of the function binaries for BENCHMARKS.md ("Whole process"): start-up,
# peak memory, size, own CPU versus waiting, debug and release builds. Takes minutes; not in CI.
.PHONY: bench-process
bench-process: venv
	$(CARGO) build --workspace --all-targets --locked
	$(CARGO) build --release --locked --bin handle-alarm --bin handle-event --bin slack-actions
	$${CARGO_TARGET_DIR:-target}/debug/examples/process_figures debug release
