#!/usr/bin/env bash
# Validates, builds and deploys vigil with AWS SAM: `make deploy`.
#
#   1. scripts/validate.sh (offline lint and security checks of template.yaml);
#   2. sam build: `cargo lambda build --release --arm64 --bin NAME` per function, from the
#      function's own package (functions/NAME), into .aws-sam/build/<Function>/bootstrap;
#   3. sam deploy, `--guided` unless you pass your own arguments.
#
# Needs AWS credentials for the target account (profile or keys) and a Region: the Region you
# deploy to is the one vigil watches (IAM events reach EventBridge in us-east-1 only: see
# docs/DEPLOY.md). cargo-lambda and zig come from the build venv (target/build-venv, `make
# build-venv`, requirements-build.txt: those two packages only, hashed), not from .venv and its
# test stand-ins; the SAM CLI is used from PATH, or installed once into target/sam-venv (pinned,
# SAM_CLI_VERSION) when PATH has none.
#
# Usage: scripts/deploy.sh                         (sam deploy --guided)
#        scripts/deploy.sh --config-env prod       (any sam deploy arguments instead)
#        SKIP_VALIDATE=1 scripts/deploy.sh ...
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SAM_CLI_VERSION=${SAM_CLI_VERSION:-1.170.0}
SAM_VENV=target/sam-venv
export SAM_CLI_TELEMETRY=0
BUILD_VENV=${BUILD_VENV:-target/build-venv}
export PATH="$ROOT/$BUILD_VENV/bin:$PATH"

if [[ ! -x $BUILD_VENV/bin/cargo-lambda ]]; then
  echo "deploy: $BUILD_VENV/bin/cargo-lambda not found; run 'make build-venv' (requirements-build.txt)" >&2
  exit 2
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "deploy: cargo not found (Rust toolchain: docs/DEPLOY.md)" >&2
  exit 2
fi
# cargo-lambda links with zig: the `ziglang` package of the build venv's python3 (first on PATH,
# above).
if ! python3 -m ziglang version >/dev/null 2>&1; then
  echo "deploy: zig not found in $BUILD_VENV; run 'make build-venv' (PyPI ziglang, with cargo-lambda)" >&2
  exit 2
fi

if command -v sam >/dev/null 2>&1; then
  SAM=sam
else
  SAM="$SAM_VENV/bin/sam"
  if [[ ! -x $SAM ]]; then
    python=python3.11
    command -v "$python" >/dev/null 2>&1 || python=python3
    echo "deploy: installing aws-sam-cli==$SAM_CLI_VERSION into $SAM_VENV (once; a few minutes)"
    mkdir -p target
    "$python" -m venv "$SAM_VENV"
    "$SAM_VENV/bin/python" -m pip install --disable-pip-version-check --quiet "aws-sam-cli==$SAM_CLI_VERSION"
  fi
fi
echo "deploy: $("$SAM" --version)"

if [[ -z ${SKIP_VALIDATE:-} ]]; then
  scripts/validate.sh
fi

"$SAM" build

if (($# == 0)); then
  set -- --guided
fi
"$SAM" deploy "$@"
