#!/usr/bin/env bash
# Replays every demo situation in examples/demo/ through the whole vigil pipeline, offline:
# the alarm as delivered (event.json), the CloudTrail log files written before it (trail/),
# the example owners file, and terminal output. Exits non-zero if any replay fails.
#
# Usage: scripts/demo.sh            (after `make build-dev`, or just `make demo`)
#        VIGIL=path/to/vigil scripts/demo.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

VIGIL=${VIGIL:-target/debug/vigil}
OWNERS=examples/owners.yaml
DEMO_DIR=examples/demo

if [[ ! -x $VIGIL ]]; then
  echo "demo: $VIGIL is missing or not executable; run 'make build-dev' first" >&2
  exit 2
fi
if [[ ! -f $OWNERS ]]; then
  echo "demo: $OWNERS is missing" >&2
  exit 2
fi

shopt -s nullglob
situations=("$DEMO_DIR"/*/)
shopt -u nullglob
if ((${#situations[@]} == 0)); then
  echo "demo: no situations found under $DEMO_DIR/" >&2
  exit 2
fi

rule=$(printf '=%.0s' {1..100})
failed=()
for dir in "${situations[@]}"; do
  dir=${dir%/}
  name=${dir##*/}
  printf '\n%s\n== %s\n' "$rule" "$name"
  if [[ -f $dir/README.md ]]; then
    # The first line of the situation's README is its story.
    head -n 1 "$dir/README.md" | tr -d '`' | fold -s -w 96 | sed 's/^/   /'
  fi
  printf '%s\n' "$rule"

  if [[ ! -f $dir/event.json || ! -d $dir/trail ]]; then
    echo "demo: $dir needs event.json and trail/" >&2
    failed+=("$name")
    continue
  fi
  rc=0
  "$VIGIL" replay "$dir/event.json" --trail "$dir/trail" --owners "$OWNERS" --format text || rc=$?
  if ((rc != 0)); then
    echo "demo: replay of $name FAILED (exit $rc)" >&2
    failed+=("$name")
  fi
done

echo
if ((${#failed[@]} > 0)); then
  echo "demo: ${#failed[@]} of ${#situations[@]} replays failed: ${failed[*]}" >&2
  exit 1
fi
echo "demo: all ${#situations[@]} situations replayed"
