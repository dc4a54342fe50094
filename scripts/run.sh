#!/usr/bin/env bash
# Builds Pulse and runs it in demo mode (a synthetic producer feeding the live pipeline), with
# PostgreSQL and Redis started locally when nothing answers at DATABASE_URL / REDIS_URL.
#
#   bash scripts/run.sh [extra `pulse serve` arguments]
#
# PULSE_LISTEN (default 127.0.0.1:8080) picks the HTTP address; the other settings (PULSE_LOG,
# PULSE_CONFIG, PULSE_STREAM, PULSE_INGEST__..., ...) pass straight through to the server.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Builds the dashboard bundle the server serves. No-op until the frontend has a package.json.
build_frontend() {
    [[ -f frontend/package.json ]] || return 0
    if ! command -v npm >/dev/null 2>&1; then
        echo "run: error: frontend/package.json exists but npm is not installed (install Node.js and npm)" >&2
        return 1
    fi
    echo "==> building the frontend" >&2
    (
        cd frontend
        if [[ -f package-lock.json ]]; then npm ci; else npm install; fi
        npm run build
    )
}

# Host and port for a browser: a wildcard bind is reachable through loopback.
dashboard_url() {
    local listen=$1 host port
    host=${listen%:*}
    port=${listen##*:}
    case $host in
        0.0.0.0 | "" | "[::]" | "::") host=127.0.0.1 ;;
    esac
    if [[ $port == 0 ]]; then
        echo "(port chosen at startup; the server logs the bound address)"
    else
        echo "http://$host:$port/"
    fi
}

source scripts/toolchain.sh build
source scripts/services.sh
source scripts/models.sh

build_frontend

echo "==> cargo build --release" >&2
cargo build --release --bin pulse

export PULSE_LISTEN=${PULSE_LISTEN:-127.0.0.1:8080}
echo "==> Pulse dashboard: $(dashboard_url "$PULSE_LISTEN")  (Ctrl-C stops the server)" >&2
exec "${CARGO_TARGET_DIR:-target}/release/pulse" serve --demo "$@"
