#!/usr/bin/env bash
# Installs the S3 server the s3 toolset's tests start (moto's `moto_server`, from PyPI
# `moto[server]`) into ~/.cache/linkmcp, unless one is already on PATH. Safe to run again: an
# installed server is left as it is.
set -euo pipefail

bin_dir="$HOME/.cache/linkmcp/bin"
venv="$HOME/.cache/linkmcp/moto"

if command -v moto_server >/dev/null 2>&1; then
  echo "moto_server: $(command -v moto_server)"
  exit 0
fi
if [ -x "$bin_dir/moto_server" ]; then
  echo "moto_server: $bin_dir/moto_server"
  exit 0
fi

python=$(command -v python3 || true)
if [ -z "$python" ]; then
  echo "installing Python 3"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3 python3-venv
  python=$(command -v python3)
fi
echo "installing moto[server] into $venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet 'moto[server]==5.2.1'
mkdir -p "$bin_dir"
ln -sf "$venv/bin/moto_server" "$bin_dir/moto_server"
echo "moto_server: $bin_dir/moto_server"
