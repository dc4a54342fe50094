#!/usr/bin/env bash
# What traces cost: `pulse bench --only pipeline` three times in one session (traces off, on at
# the default sample ratio, on for every post), each exporting to a local OTLP/HTTP sink that
# answers 200 and counts what it received, so the exporter does its whole job.
#
#   bash scripts/bench-traces.sh            # uses target/release/pulse (cargo build --release)
#
# Prints each run's end-to-end and latency rows, and what the sink received.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/services.sh >/dev/null
bin=${PULSE_BIN:-target/release/pulse}
[[ -x $bin ]] || { echo "bench-traces: build first (cargo build --release)" >&2; exit 1; }

work=$(mktemp -d)
port_file=$work/port
python3 - "$port_file" "$work/received" <<'PY' &
import http.server, sys, threading

port_file, received = sys.argv[1], sys.argv[2]
counts = {"requests": 0, "bytes": 0}
lock = threading.Lock()

class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        with lock:
            counts["requests"] += 1
            counts["bytes"] += len(body)
            with open(received, "w") as f:
                f.write(f"{counts['requests']} export requests, {counts['bytes']} bytes\n")
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
with open(port_file, "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
PY
sink=$!
trap 'kill $sink 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do [[ -s $port_file ]] && break; sleep 0.1; done
endpoint="http://127.0.0.1:$(cat "$port_file")"

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for ratio in off 0.1 1.0; do
    rm -f "$work/received"
    if [[ $ratio == off ]]; then
        echo "== traces off"
        env -u PULSE_TRACES__OTLP_ENDPOINT "$bin" bench --only pipeline
    else
        echo "== traces on, sample ratio $ratio"
        PULSE_TRACES__OTLP_ENDPOINT=$endpoint PULSE_TRACES__SAMPLE_RATIO=$ratio \
            "$bin" bench --only pipeline
        echo "sink: $(cat "$work/received" 2>/dev/null || echo nothing received)"
    fi
done 2>/dev/null | grep -E '^==|^sink|^machine|^\| (\*\*Pulse end to end|latency at|peak resident)'
