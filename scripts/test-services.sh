#!/usr/bin/env bash
# The services and tools `make test` needs, checked and — where missing — installed and
# started, so that `make test` passes on a fresh Debian machine with only a Rust toolchain.
# `make test` runs it first (and `.ci/run` runs `make test`). Idempotent and quiet when
# everything is up; it says what it installs or starts, on stderr.
#
#   PostgreSQL  127.0.0.1:5432, user postgres without password (trust on loopback), database test,
#               and initdb/pg_ctl (the fault tests start a private cluster)
#   Redis       127.0.0.1:6379, and the redis-server binary (the fault tests start their own)
#   RabbitMQ    127.0.0.1:5672 (guest/guest) with the management API on 15672
#   clickhouse-server, moto_server (S3), nx-27017 (MongoDB wire protocol), prometheus (with
#               openssl for its TLS test): installed only; the tests start their own on free
#               ports
#
# Debian packages come from apt-get (as root, or through sudo); PyPI tools go into one venv,
# ~/.cache/linkmcp/venv, with their commands linked into ~/.cache/linkmcp/bin, which
# `make test` puts on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

cache="$HOME/.cache/linkmcp"
bin_dir="$cache/bin"
venv="$cache/venv"
export PATH="$bin_dir:$PATH"

say() { printf 'test-services: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  local port=$1 what=$2
  for _ in $(seq 1 120); do port_open "$port" && return 0; sleep 0.5; done
  die "$what did not open port $port within 60 s"
}
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "needs root to run: $* (run make test as root, or install sudo)"; fi
}
apt_updated=
apt_install() {
  say "installing $* (apt-get)"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
# A PyPI package into the shared venv, its command linked into $bin_dir.
pip_install() {
  local command=$1; shift
  command -v "$command" >/dev/null 2>&1 && return 0
  if [ ! -x "$venv/bin/pip" ]; then
    command -v python3 >/dev/null 2>&1 || apt_install python3
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      apt_install python3-venv
      python3 -m venv "$venv"
    fi
  fi
  say "installing $* (pip, into $venv)"
  "$venv/bin/pip" install --quiet "$@"
  mkdir -p "$bin_dir"
  ln -sf "$venv/bin/$command" "$bin_dir/$command"
}

postgres() {
  if ! port_open 5432; then
    command -v pg_ctlcluster >/dev/null 2>&1 || apt_install postgresql
    local version
    version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
    [ -n "$version" ] || die "PostgreSQL is installed but has no cluster under /etc/postgresql"
    say "starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_port 5432 PostgreSQL
  fi
  if ! psql_ok postgres; then
    # A fresh Debian cluster asks for passwords on loopback; the tests connect as postgres
    # without one, as on a developer machine with trust authentication.
    local hba
    hba=$(as_root runuser -u postgres -- psql -Atqc 'show hba_file')
    say "allowing user postgres without password on loopback (trust in $hba)"
    as_root sed -i -e '1i host all postgres ::1/128 trust' -e '1i host all postgres 127.0.0.1/32 trust' "$hba"
    as_root runuser -u postgres -- psql -qc 'select pg_reload_conf()' >/dev/null
    sleep 0.5
    psql_ok postgres || die "cannot connect to PostgreSQL on 127.0.0.1:5432 as postgres"
  fi
  if ! psql_ok test; then
    say "creating database test"
    psql -h 127.0.0.1 -U postgres -d postgres -qc 'create database test' >/dev/null
  fi
  # The fault tests make a private cluster of their own (initdb, pg_ctl), whatever serves 5432.
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || apt_install postgresql
}
psql_ok() {
  command -v psql >/dev/null 2>&1 || apt_install postgresql-client
  PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -U postgres -d "$1" -w -Atqc 'select 1' >/dev/null 2>&1
}

redis() {
  # The fault tests start a private redis-server of their own, so the binary is needed even
  # when a Redis already listens on 6379.
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  port_open 6379 && return 0
  say "starting Redis"
  mkdir -p /tmp/linkmcp-redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /tmp/linkmcp-redis --logfile /tmp/linkmcp-redis/redis.log
  wait_port 6379 Redis
}

rabbitmq() {
  if ! port_open 5672; then
    command -v rabbitmq-server >/dev/null 2>&1 || apt_install rabbitmq-server
    say "starting RabbitMQ"
    as_root rabbitmq-server -detached
    wait_port 5672 RabbitMQ
  fi
  # The rabbitmq toolset lists and peeks through the management API.
  if ! port_open 15672; then
    say "enabling the RabbitMQ management plugin"
    as_root rabbitmq-plugins enable --quiet rabbitmq_management >/dev/null
    wait_port 15672 "the RabbitMQ management plugin"
  fi
}

clickhouse() {
  command -v clickhouse-server >/dev/null 2>&1 || apt_install clickhouse-server
}

s3() {
  pip_install moto_server 'moto[server]==5.2.1'
}

mongodb_wire() {
  pip_install nx-27017 nx-27017
}

# The prometheus toolset's tests start their own Prometheus (and make a CA with openssl for
# its HTTPS case); Debian's package would also start one on :9090 under systemd, which the
# tests do not use.
# (Named so that `command -v prometheus` finds the binary, not this function.)
prometheus_server() {
  command -v prometheus >/dev/null 2>&1 || apt_install prometheus
  command -v openssl >/dev/null 2>&1 || apt_install openssl
}

postgres
redis
rabbitmq
clickhouse
s3
mongodb_wire
prometheus_server
