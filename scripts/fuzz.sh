#!/usr/bin/env bash
# Runs every libFuzzer target in fuzz/ for FUZZ_SECONDS each (`make fuzz`; not part of CI).
# Exits non-zero if any target crashed, failed an assertion, timed out or ran out of memory;
# what it found is in fuzz/artifacts/<target>/ and the full output in fuzz/logs/<target>.log.
#
# Usage: scripts/fuzz.sh [TARGET...]     (default: every target in fuzz/fuzz_targets/)
# Environment:
#   FUZZ_SECONDS    seconds per target (default 60)
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 10)
#   FUZZ_SANITIZER  address (default) or none: see RELIABILITY.md, "Fuzzing"
#
# The corpus of each target (fuzz/corpus/<target>, git-ignored) is seeded from the repo's own
# inputs: the AWS payloads in tests/fixtures/aws-events, the demo situations, the example and
# built-in configuration files, and tests/fixtures/fuzz-regressions/<target>.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-10}
FUZZ_SANITIZER=${FUZZ_SANITIZER:-address}
CARGO=${CARGO:-cargo}

# Pinned: 0.13.2 builds with `--locked` on the stable toolchain the workspace requires.
CARGO_FUZZ_VERSION=0.13.2
TOOLS=$ROOT/target/tools
if [[ "$("$TOOLS/bin/cargo-fuzz" --version 2>/dev/null || true)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into target/tools" >&2
  "$CARGO" install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$TOOLS"
fi
export PATH="$TOOLS/bin:$PATH"

# cargo-fuzz passes unstable flags (-Zsanitizer, sanitizer-coverage passes) to rustc; the
# stable toolchain accepts them with this switch, so no nightly toolchain is needed.
export RUSTC_BOOTSTRAP=1

if (($# > 0)); then
  targets=("$@")
else
  targets=()
  for f in fuzz/fuzz_targets/*.rs; do
    name=${f##*/}
    targets+=("${name%.rs}")
  done
fi

# Debug assertions on (overflow checks too): an arithmetic overflow is a bug to find here.
build_flags=(--fuzz-dir fuzz --debug-assertions --sanitizer "$FUZZ_SANITIZER")
# All targets at once: one cargo build, and `cargo fuzz run` below then finds them up to date.
"$CARGO" fuzz build "${build_flags[@]}"

# Seed files for one target, one path a line.
seeds() {
  local events=tests/fixtures/aws-events
  case $1 in
    intake)
      find "$events" examples/demo -name '*.json' ;;
    cloudtrail_trail)
      find "$events/cloudtrail-api-call-eventbridge" "$events/cloudtrail-lookup-events-response" \
        "$events/malformed" examples/demo -name '*.json' ;;
    lookup_events)
      find "$events/cloudtrail-lookup-events-response" "$events/cloudtrail-api-call-eventbridge" \
        -name '*.json' ;;
    owners_yaml) echo examples/owners.yaml ;;
    rules_yaml) echo shared/core/src/rules.yaml ;;
    runbooks_yaml) echo shared/core/src/runbooks.yaml ;;
  esac
  if [[ -d tests/fixtures/fuzz-regressions/$1 ]]; then
    find "tests/fixtures/fuzz-regressions/$1" -type f
  fi
}

dict_for() {
  case $1 in
    intake | cloudtrail_trail | lookup_events) echo fuzz/dict/json.dict ;;
    owners_yaml | rules_yaml | runbooks_yaml) echo fuzz/dict/yaml.dict ;;
    slack_actions) echo fuzz/dict/slack.dict ;;
  esac
}

mkdir -p fuzz/logs
failed=()
summary=()
for target in "${targets[@]}"; do
  corpus=fuzz/corpus/$target
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  while IFS= read -r seed; do
    # Named after the path, so seeds from different folders never overwrite each other.
    dest=$corpus/seed-${seed//\//_}
    [[ -e $dest ]] || cp "$seed" "$dest"
  done < <(seeds "$target")

  libfuzzer_flags=(-max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT" -print_final_stats=1)
  dict=$(dict_for "$target")
  if [[ -n $dict ]]; then
    libfuzzer_flags+=(-dict="$dict")
  fi
  log=fuzz/logs/$target.log
  echo "fuzz: $target for ${FUZZ_SECONDS}s (log: $log)" >&2
  status=0
  "$CARGO" fuzz run "${build_flags[@]}" "$target" "$corpus" -- "${libfuzzer_flags[@]}" \
    >"$log" 2>&1 || status=$?

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  seconds=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
  # libFuzzer's last status line: edges covered and the corpus it kept (after its own pruning).
  cov=$(sed -n 's/^#[0-9]*[[:space:]]*DONE.* cov: \([0-9]*\).*/\1/p' "$log" | tail -n 1)
  kept=$(sed -n 's/^#[0-9]*[[:space:]]*DONE.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' "$log" | tail -n 1)
  files=$(find "$corpus" -type f | wc -l)
  summary+=("$(printf '%-18s %5s s %11s execs  cov %6s  corpus %s (%s files)  exit %s' \
    "$target" "${seconds:-?}" "${execs:-?}" "${cov:-?}" "${kept:-?}" "$files" "$status")")
  if ((status != 0)); then
    failed+=("$target")
    grep -E '^(==[0-9]+== ?ERROR|thread .* panicked|SUMMARY|Failing input|artifact_prefix|Test unit written)' \
      "$log" | head -n 20 >&2 || true
  fi
done

echo
printf '%s\n' "${summary[@]}"
if ((${#failed[@]} > 0)); then
  echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/, logs in fuzz/logs/)" >&2
  exit 1
fi
echo "fuzz: no crash in ${#targets[@]} target(s)"
