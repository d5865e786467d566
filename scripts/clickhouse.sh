#!/usr/bin/env bash
# A throwaway ClickHouse server for the clickhouse toolset's tests (scripts/test-services.sh
# installs clickhouse-server).
#
#   scripts/clickhouse.sh start DIR PORT     start a server with its config and data under DIR,
#                                            HTTP interface on 127.0.0.1:PORT; it stops when the
#                                            process that started it exits
#
# The server has one user besides `default`: `linkmcp` with the password in
# $LINKMCP_TEST_CH_PASSWORD (the tests' link credentials).
set -euo pipefail

case "${1:-}" in
start)
  dir="${2:?usage: clickhouse.sh start DIR PORT}"
  port="${3:?usage: clickhouse.sh start DIR PORT}"
  password="${LINKMCP_TEST_CH_PASSWORD:?set LINKMCP_TEST_CH_PASSWORD}"
  if ! command -v clickhouse-server >/dev/null 2>&1; then
    echo "clickhouse-server is not installed: run scripts/test-services.sh" \
      "(it installs Debian's clickhouse-server)" >&2
    exit 1
  fi
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$dir/log"
  cat >"$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/log/server.log</log><errorlog>$dir/log/error.log</errorlog></logger>
  <http_port>$port</http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>5368709</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
XML
  cat >"$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>1000000000</max_memory_usage></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile><quota>default</quota>
    </default>
    <linkmcp>
      <password>$password</password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile><quota>default</quota>
    </linkmcp>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
XML
  parent=$PPID
  clickhouse-server --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 &
  server=$!
  # Stop the server when the process that started it goes away.
  ( while kill -0 "$parent" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 1; done
    kill "$server" 2>/dev/null || true ) >/dev/null 2>&1 &
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$server"
      exit 0
    fi
    if ! kill -0 "$server" 2>/dev/null; then
      echo "clickhouse-server exited; its log:" >&2
      tail -n 20 "$dir/log/stdout.log" "$dir/log/error.log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.2
  done
  echo "clickhouse-server did not open port $port" >&2
  exit 1
  ;;
*)
  echo "usage: clickhouse.sh start DIR PORT" >&2
  exit 2
  ;;
esac
