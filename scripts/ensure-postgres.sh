#!/usr/bin/env bash
# Installs Debian's PostgreSQL server when missing, so the multi-worker tests run against a real
# server (they start a private one on loopback with its own data directory; nothing else is used).
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" > /dev/null; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get > /dev/null; then
    echo "ensure-postgres: PostgreSQL is not installed and cannot be installed here (needs root and apt-get);" \
         "the multi-worker tests will be skipped" >&2
    exit 0
fi
echo "ensure-postgres: installing Debian's postgresql package" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql > /dev/null
