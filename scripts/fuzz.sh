#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted input (see fuzz/ and docs/operations.md, "Fuzzing"):
# builds the cargo-fuzz targets, runs each for a fixed time, and fails on any crash.
#
#   bash scripts/fuzz.sh [seconds-per-target]      # default 60
#
# PULSE_FUZZ_TARGETS     targets to run, space separated (default: every target in fuzz/)
# PULSE_FUZZ_TARGET_DIR  build directory, kept outside the clone because the fuzz build uses
#                        other compiler flags than the normal one (default /var/tmp/pulse-fuzz-target)
# PULSE_FUZZ_SANITIZER   address (default) or none
# PULSE_FUZZ_CORPUS_DIR  keep the inputs runs find in <dir>/<target> instead of next to the
#                        seeds in fuzz/corpus/<target> (a CI job can point it outside the clone
#                        so the corpus grows from run to run)
#
# cargo-fuzz is installed into cargo's bin directory when missing. It needs unstable compiler
# flags; on a stable toolchain they are unlocked with RUSTC_BOOTSTRAP=1. Each target starts from
# the committed seeds in fuzz/corpus/<target> plus whatever earlier runs found. A crash leaves
# its input in fuzz/artifacts/<target>/; the script prints the command that replays it and
# exits 1 once every target has run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PULSE_LOG_TAG=fuzz
source scripts/toolchain.sh build

seconds=${1:-60}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    pulse_err "usage: bash scripts/fuzz.sh [seconds-per-target]  (got '$seconds')"
    exit 2
fi
target_dir=${PULSE_FUZZ_TARGET_DIR:-/var/tmp/pulse-fuzz-target}
sanitizer=${PULSE_FUZZ_SANITIZER:-address}
cargo_fuzz_version=${PULSE_CARGO_FUZZ_VERSION:-0.13.2}

# libFuzzer itself is C++, compiled by libfuzzer-sys's build script.
if ! command -v c++ >/dev/null 2>&1; then
    pulse_pkg_install g++
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    pulse_log "installing cargo-fuzz $cargo_fuzz_version into ${CARGO_HOME:-$HOME/.cargo}/bin"
    cargo install cargo-fuzz --locked --version "$cargo_fuzz_version"
fi

if ! rustc --version | grep -q nightly; then
    export RUSTC_BOOTSTRAP=1
fi

if [[ -n ${PULSE_FUZZ_TARGETS:-} ]]; then
    read -r -a targets <<<"$PULSE_FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo fuzz list)
fi

fuzz_args=(--target-dir "$target_dir" --sanitizer "$sanitizer")

mkdir -p "$target_dir"
pulse_log "building ${targets[*]} in $target_dir (sanitizer: $sanitizer)"
build_started=$SECONDS
cargo fuzz build "${fuzz_args[@]}"
pulse_log "build took $((SECONDS - build_started)) s"

# One of libFuzzer's closing `stat::<name>: <value>` lines.
final_stat() {
    awk -v k="stat::$2:" '$1 == k {print $2}' "$1" | tail -n 1
}

failed=()
for target in "${targets[@]}"; do
    seeds=fuzz/corpus/$target
    # libFuzzer writes new inputs into the first corpus directory and only reads the others.
    corpora=("$seeds")
    if [[ -n ${PULSE_FUZZ_CORPUS_DIR:-} ]]; then
        corpora=("$PULSE_FUZZ_CORPUS_DIR/$target" "$seeds")
    fi
    artifacts=fuzz/artifacts/$target
    mkdir -p "${corpora[@]}" "$artifacts"
    log=$(mktemp)
    extra=()
    # Keywords of the target's input format, so mutations reach past the JSON syntax sooner.
    if [[ -f fuzz/dict/$target.dict ]]; then
        extra+=(-dict="fuzz/dict/$target.dict")
    fi
    pulse_log "running $target for $seconds s"
    started=$(date +%s)
    # -timeout turns a hang into a reported failure instead of a stalled run.
    if cargo fuzz run "${fuzz_args[@]}" "$target" "${corpora[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${extra[@]}" 2>&1 | tee "$log" >&2; then
        status=0
    else
        status=1
    fi
    elapsed=$(($(date +%s) - started))
    pulse_log "$target: $(final_stat "$log" number_of_executed_units) execs in ${elapsed} s" \
        "($(final_stat "$log" average_exec_per_sec) execs/s)," \
        "corpus $(find "${corpora[@]}" -type f | wc -l) inputs, peak RSS $(final_stat "$log" peak_rss_mb) MB"
    if ((status != 0)); then
        failed+=("$target")
        # The newest artifact is this run's reproducer.
        reproducer=$(find "$artifacts" -type f -newermt "@$started" -printf '%T@ %p\n' 2>/dev/null |
            sort -n | tail -n 1 | cut -d' ' -f2-)
        pulse_err "$target failed; reproducer: ${reproducer:-none written (see the output above)}"
        if [[ -n $reproducer ]]; then
            pulse_err "replay it with: ${RUSTC_BOOTSTRAP:+RUSTC_BOOTSTRAP=1 }cargo fuzz run" \
                "--target-dir $target_dir --sanitizer $sanitizer $target $reproducer"
        fi
    fi
    rm -f "$log"
done

if ((${#failed[@]})); then
    pulse_err "crashes in: ${failed[*]}"
    exit 1
fi
pulse_log "no crash in ${targets[*]} ($seconds s each)"
