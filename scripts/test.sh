#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy (warnings are errors), then the test suite against
# local PostgreSQL and Redis (started when nothing answers at DATABASE_URL / REDIS_URL).
#
#   bash scripts/test.sh [--under-load] [test runner arguments, e.g. a test name filter]
#
# Every failing test is reported: the runner goes on past the first failure unless given
# --fail-fast. --under-load keeps every core busy (stress-ng) while the tests run, to find
# tests that assume an idle machine.
#
# The tests see DATABASE_URL, REDIS_URL, ORT_DYLIB_PATH, PULSE_MODEL_DIR, PULSE_SCHEMATHESIS (the API
# fuzzer tests/api/openapi.rs runs) and PULSE_PG_BIN (initdb/pg_ctl/postgres, for tests that start
# throwaway clusters). CARGO_TARGET_DIR is honoured as cargo
# always does. The last lines printed are the test runner's own summary.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

under_load=false
runner_args=()
for arg in "$@"; do
    case $arg in
        --under-load) under_load=true ;;
        *) runner_args+=("$arg") ;;
    esac
done
fail_fast=(--no-fail-fast)
for arg in "${runner_args[@]}"; do
    if [[ $arg == --fail-fast || $arg == --ff ]]; then fail_fast=(); fi
done

# Each step says how long it took, so a slower run shows where.
step() {
    local started=$SECONDS
    echo "==> $*" >&2
    "$@"
    echo "==> $1 took $((SECONDS - started)) s" >&2
}

# Runs the dashboard's unit tests and builds it (the Rust browser tests in tests/api/dashboard.rs
# serve that build). No-op until the frontend has a package.json.
run_frontend_tests() {
    [[ -f frontend/package.json ]] || return 0
    if ! command -v npm >/dev/null 2>&1; then
        echo "test: error: frontend/package.json exists but npm is not installed (install Node.js and npm)" >&2
        return 1
    fi
    # The browser tests drive Debian's Chromium (playwright-core downloads no browser).
    if [[ ! -x ${CHROMIUM_PATH:-/usr/bin/chromium} ]] && command -v apt-get >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
        echo "==> installing chromium for the browser tests" >&2
        apt-get install -y chromium >&2 || { apt-get update >&2 && apt-get install -y chromium >&2; }
    fi
    echo "==> frontend tests" >&2
    (
        cd frontend
        if [[ -f package-lock.json ]]; then npm ci; else npm install; fi
        npm test --if-present
        npm run build
    )
}

# The operations kit: the alert rules pass `promtool check rules` and their own unit tests, the
# Kubernetes PrometheusRule carries the same rules, and the Grafana dashboard is what its
# generator writes and fits Grafana's dashboard schema. (That every metric they query is one
# Pulse exposes is a Rust test: tests/api/monitoring.rs.)
run_deploy_checks() {
    if ! command -v promtool >/dev/null 2>&1; then
        # Debian's prometheus package ships promtool; nothing else of it is used.
        pulse_pkg_install prometheus || return 1
    fi
    step python3 deploy/prometheus/check.py
    step python3 deploy/grafana/dashboard.py --check
    (
        cd deploy/grafana/schema
        npm ci --no-audit --no-fund
        node check.mjs
    )
}

# The email tests make their TLS certificates with the openssl command.
ensure_openssl() {
    command -v openssl >/dev/null 2>&1 || pulse_pkg_install openssl
}

has_lib_target() {
    [[ -f src/lib.rs ]] || grep -q '^\[lib\]' Cargo.toml
}

source scripts/toolchain.sh dev
source scripts/services.sh
# The bundled model and ONNX Runtime (exports ORT_DYLIB_PATH and PULSE_MODEL_DIR for the tests).
source scripts/models.sh
echo "==> target dir: ${CARGO_TARGET_DIR:-target}" >&2

step cargo fmt --all -- --check
step cargo clippy --all-targets -- -D warnings
step cargo clippy --all-targets --features fault-injection -- -D warnings

step run_frontend_tests
echo "==> deploy checks" >&2
step run_deploy_checks
ensure_openssl

# Doc tests first: `--all-targets` never includes them, and the final runner's summary should
# be the last thing on screen.
if has_lib_target; then
    step cargo test --doc --features fault-injection
fi

if [[ $under_load == true ]]; then
    command -v stress-ng >/dev/null 2>&1 || pulse_pkg_install stress-ng
    stress-ng --cpu "$(nproc)" --quiet &
    load_pid=$!
    trap 'kill "$load_pid" 2>/dev/null || true' EXIT
    echo "==> under load: stress-ng --cpu $(nproc) beside the tests" >&2
fi

# The libraries' unit tests and every integration test: `--tests` leaves out the binaries, whose
# main.rs only calls their library (`test = false`), where `--all-targets` would build them as
# test binaries too.
# Not through `step`: the runner's summary, with its own time, stays the last thing printed.
runner=(cargo test)
if cargo nextest --version >/dev/null 2>&1; then runner=(cargo nextest run); fi
echo "==> ${runner[*]} --lib --tests --features fault-injection" >&2
"${runner[@]}" --lib --tests --features fault-injection "${fail_fast[@]}" "${runner_args[@]}"
