#!/usr/bin/env bash
# Lighthouse audits of the dashboard as a new user first sees it: `pulse serve --demo` on its
# own database and stream, given a minute to fill the panels, then Lighthouse's desktop and
# mobile presets (three runs each, the median reported) in Debian's Chromium.
#
#   bash scripts/lighthouse.sh [--runs N] [--out DIR]
#
# Uses the release binary and frontend/dist that `bash scripts/run.sh` builds (PULSE_BIN picks
# another binary); installs Lighthouse from npm into frontend/lighthouse on first use.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/services.sh >/dev/null
source scripts/models.sh >/dev/null
bin=${PULSE_BIN:-${CARGO_TARGET_DIR:-target}/release/pulse}
[[ -x $bin ]] || { echo "lighthouse: build first (cargo build --release)" >&2; exit 1; }
[[ -f frontend/dist/index.html ]] || { echo "lighthouse: build the dashboard first (cd frontend && npm run build)" >&2; exit 1; }
command -v chromium >/dev/null || { echo "lighthouse: needs Chromium (apt-get install chromium)" >&2; exit 1; }
if [[ ! -d frontend/lighthouse/node_modules/lighthouse ]]; then
    (cd frontend/lighthouse && npm ci --no-audit --no-fund)
fi

db=pulse_lighthouse
psql -X -q -d "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work=$(mktemp -d)
DATABASE_URL=${DATABASE_URL%/*}/$db PULSE_STREAM=pulse-lighthouse-$$ PULSE_LISTEN=127.0.0.1:$port \
    PULSE_HTTP__DASHBOARD_DIR=frontend/dist PULSE_LOG=warn "$bin" serve --demo >"$work/pulse.log" 2>&1 &
pulse=$!
trap 'kill $pulse 2>/dev/null; wait $pulse 2>/dev/null; rm -rf "$work"' EXIT
url=http://127.0.0.1:$port/
for _ in $(seq 120); do curl -fsS -o /dev/null "$url" 2>/dev/null && break; sleep 0.5; done
curl -fsS -o /dev/null "$url" || { cat "$work/pulse.log" >&2; exit 1; }
echo "== $(date -u +%F), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(chromium --version 2>/dev/null)"
echo "== waiting 60 s for the demo to fill the panels"
sleep 60
CHROME_PATH=$(command -v chromium) node frontend/lighthouse/run.mjs "$url" "$@"
