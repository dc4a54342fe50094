#!/usr/bin/env bash
# Fits the built-in virality model on real share cascades and writes it where the server
# embeds it (crates/core/src/virality/calibration.json), with the cross-validated report beside the other
# benchmark figures (docs/bench/virality-twitter15.{md,json}).
#
#   bash scripts/fit-virality.sh [folder of propagation trees]
#
# The default folder is ../shared/data/cascades/twitter15 (Twitter15, see its README); the
# data stays there, only the fitted model and the report are written here.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
data="${1:-../shared/data/cascades/twitter15}"
[[ -d $data ]] || { echo "fit-virality: no folder $data" >&2; exit 1; }

source scripts/toolchain.sh build
cargo build --release --bin pulse --bin pulse-tools
target="${CARGO_TARGET_DIR:-target}"
{
    echo "# Virality on real cascades"
    echo
    cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//')
    echo "Run $(date -u +%Y-%m-%d) on ${cpu:-$(uname -m)}, $(nproc) cores: \`bash scripts/fit-virality.sh\`."
    echo
    "$target/release/pulse" eval virality --data "$data" --min-shares 50 \
        --write-calibration crates/core/src/virality/calibration.json \
        --json docs/bench/virality-twitter15.json
} | tee docs/bench/virality-twitter15.md
