#!/usr/bin/env bash
# Installs (Debian, as root) and starts what the tests and the dev stack need:
# nats-server with JetStream and PostgreSQL 15 with trust auth on 127.0.0.1.
# Idempotent: anything already installed and running is left alone.
# Sourced by scripts/test and scripts/demo; exports NATS_URL and DATABASE_URL.
set -euo pipefail

export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

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
