#!/usr/bin/env bash
# Local AWS (moto + vigil's extensions) and the Slack stand-in, on 127.0.0.1, for tests.
#
#   localaws/run.sh start    start both in the background (creates .venv if needed), wait until
#                            each answers, write target/localaws/env (source it) and the PIDs
#   localaws/run.sh stop     stop exactly the PIDs that `start` recorded
#   localaws/run.sh status   say what runs, where
#   localaws/run.sh test     the smoke tests (starts and stops the servers if they are not running)
#
# Ports: VIGIL_LOCALAWS_PORT / VIGIL_SLACK_PORT (default 0: a free port each).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE="$ROOT/target/localaws"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

ensure_venv() {
  local want have=""
  want=$(sha256sum "$ROOT/requirements-dev.txt" | cut -d' ' -f1)
  [[ -f $VENV/.requirements-dev.sha256 ]] && have=$(cat "$VENV/.requirements-dev.sha256")
  if [[ -x $PY && $want == "$have" ]]; then return 0; fi
  local python=python3.11
  command -v "$python" >/dev/null 2>&1 || python=python3
  [[ -x $PY ]] || "$python" -m venv "$VENV"
  echo "localaws: installing requirements-dev.txt into .venv" >&2
  "$PY" -m pip install --disable-pip-version-check --quiet --require-hashes --requirement "$ROOT/requirements-dev.txt"
  echo "$want" >"$VENV/.requirements-dev.sha256"
}

# alive NAME: the recorded PID runs and is still our server (not a recycled PID).
alive() {
  local pid
  pid=$(cat "$STATE/$1.pid" 2>/dev/null) || return 1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && grep -q "localaws/$1.py" "/proc/$pid/cmdline" 2>/dev/null
}

# answers URL: an HTTP answer of any status.
answers() {
  "$PY" - "$1" <<'EOF'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass
EOF
}

# launch NAME PORT PROBE_PATH: start localaws/NAME.py, wait until it answers (30 s at most).
launch() {
  local name=$1 port=$2 probe=$3 pid i
  rm -f "$STATE/$name.port"
  "$PY" "$ROOT/localaws/$name.py" --port "$port" --port-file "$STATE/$name.port" \
    >"$STATE/$name.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$STATE/$name.pid"
  for i in $(seq 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "localaws: $name exited; see $STATE/$name.log" >&2
      tail -20 "$STATE/$name.log" >&2
      return 1
    fi
    if [[ -s $STATE/$name.port ]] && answers "http://127.0.0.1:$(cat "$STATE/$name.port")$probe" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "localaws: $name did not answer within 30 s; see $STATE/$name.log" >&2
  return 1
}

start() {
  mkdir -p "$STATE"
  if alive server && alive slack; then
    echo "localaws: already running"
    status
    return 0
  fi
  stop >/dev/null
  ensure_venv
  launch server "${VIGIL_LOCALAWS_PORT:-0}" /_vigil/faults
  launch slack "${VIGIL_SLACK_PORT:-0}" /_stand-in/requests
  cat >"$STATE/env" <<EOF
export AWS_ENDPOINT_URL=http://127.0.0.1:$(cat "$STATE/server.port")
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_EC2_METADATA_DISABLED=true
export VIGIL_SLACK_URL=http://127.0.0.1:$(cat "$STATE/slack.port")
export VIGIL_LOCALAWS_PID=$(cat "$STATE/server.pid")
export VIGIL_SLACK_PID=$(cat "$STATE/slack.pid")
EOF
  status
}

stop() {
  local name pid i
  for name in server slack; do
    if alive "$name"; then
      pid=$(cat "$STATE/$name.pid")
      kill "$pid"
      for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
      echo "localaws: stopped $name (pid $pid)"
    fi
    rm -f "$STATE/$name.pid" "$STATE/$name.port"
  done
  rm -f "$STATE/env"
}

status() {
  local name rc=0
  for name in server slack; do
    if alive "$name"; then
      echo "localaws: $name running, pid $(cat "$STATE/$name.pid"), port $(cat "$STATE/$name.port")"
    else
      echo "localaws: $name not running"
      rc=3
    fi
  done
  [[ $rc -eq 0 ]] && echo "localaws: env in $STATE/env"
  return $rc
}

run_tests() {
  local started=0 rc=0
  if ! (alive server && alive slack); then
    start
    started=1
  fi
  # shellcheck source=/dev/null
  source "$STATE/env"
  "$PY" -m pytest -q -p no:cacheprovider "$ROOT/localaws/test_localaws.py" "$@" || rc=$?
  [[ $started -eq 1 ]] && stop
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  test) shift; run_tests "$@" ;;
  *) echo "usage: $0 start|stop|status|test [pytest args]" >&2; exit 2 ;;
esac
