#!/usr/bin/env bash
# Measures the reach forecast as the prior of the live predictor's growth model: each cascade's
# forecast at age 0, made out of fold by `pulse eval forecast` (folds grouped by author and
# story), becomes a feature of the growth model, and `pulse eval virality` is run with and
# without it on the same cascades. Writes docs/bench/virality-prior-twitter15.md; the shipped
# calibration is left as it is.
#
#   bash scripts/virality-prior.sh [folder of propagation trees with source_tweets.tsv]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
data="${1:-../shared/data/cascades/twitter15}"
[[ -d $data ]] || { echo "virality-prior: no folder $data" >&2; exit 1; }

source scripts/toolchain.sh build
eval "$(bash scripts/models.sh)"
cargo build --release --bin pulse --bin pulse-tools
pulse="${CARGO_TARGET_DIR:-target}/release/pulse"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$pulse" eval forecast --data "$data" --predictions "$work/priors.jsonl" > "$work/forecast.txt"
{
    echo "# The reach forecast as the growth model's prior"
    echo
    cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//')
    echo "Run $(date -u +%Y-%m-%d) on ${cpu:-$(uname -m)}, $(nproc) cores: \`bash scripts/virality-prior.sh\`."
    echo
    echo "## Without a prior"
    echo
    "$pulse" eval virality --data "$data" --min-shares 50 --generated-posts 0 2>&1
    echo
    echo "## With the out-of-fold forecast as prior"
    echo
    "$pulse" eval virality --data "$data" --min-shares 50 --generated-posts 0 \
        --priors "$work/priors.jsonl" 2>&1
} | tee docs/bench/virality-prior-twitter15.md
