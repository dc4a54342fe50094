#!/usr/bin/env bash
# Makes sure the build toolchain exists: cargo and rustc, a C compiler and linker (cc, which
# rustc links with and some -sys crates compile with) and pkg-config. With "dev", also rustfmt
# and clippy for the lint steps of scripts/test.sh, and the mold linker where apt has it (used
# wherever it is installed, see _pulse_use_mold). Quiet and quick when everything is present.
#
#   bash scripts/toolchain.sh [build|dev]
#   source scripts/toolchain.sh build|dev   # also puts ~/.cargo/bin on the caller's PATH
#
# Rust itself is never downloaded from outside the system's package registry: without cargo it
# explains how to install rustup and falls back to the distribution's cargo package only when
# that is new enough to build this crate.

# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh" || return 1 2>/dev/null || exit 1

# Oldest rustc the locked dependencies accept (refinery 0.10 declares rust-version 1.92).
# Raise it together with Cargo.lock; cargo itself reports the exact requirement either way.
PULSE_MIN_RUST=${PULSE_MIN_RUST:-1.92}

_pulse_version_ge() {
    # True when $1 >= $2, comparing dotted versions.
    printf '%s\n%s\n' "$2" "$1" | sort -V -C
}

_pulse_rustup_help() {
    local PULSE_LOG_TAG=toolchain
    pulse_err "a Rust toolchain >= $PULSE_MIN_RUST is needed (cargo, rustc${1:+, $1})."
    cat >&2 <<EOF
  Install it with rustup, the Rust project's installer (see https://rustup.rs):
      curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
      source "\$HOME/.cargo/env"
  or, with rustup already installed:
      rustup toolchain install stable --profile minimal --component rustfmt,clippy
      rustup default stable
  then rerun this command.
EOF
}

# rustup installs into ~/.cargo/bin, which non-login shells (CI, cron) often lack on PATH.
_pulse_cargo_on_path() {
    local bin=${CARGO_HOME:-$HOME/.cargo}/bin
    if { ! command -v cargo || ! command -v rustc; } >/dev/null 2>&1 && [[ -x $bin/cargo ]]; then
        PATH=$bin:$PATH
        export PATH
    fi
}

_pulse_rustc_version() {
    rustc --version 2>/dev/null | awk '{print $2}' | sed 's/-.*//'
}

# Installs the distribution's Rust when its candidate version is new enough; returns 1 if not.
_pulse_rust_from_apt() {
    local want=("$@") cand
    command -v apt-cache >/dev/null 2>&1 || return 1
    cand=$(apt-cache policy rustc 2>/dev/null | awk '/Candidate:/ {print $2}')
    cand=${cand#*:}
    cand=${cand%%[+~-]*}
    if [[ -z $cand || $cand == "(none)" ]] || ! _pulse_version_ge "$cand" "$PULSE_MIN_RUST"; then
        pulse_log "the distribution's rustc (${cand:-none}) is older than $PULSE_MIN_RUST; not installing it"
        return 1
    fi
    pulse_log "falling back to the distribution's Rust $cand"
    pulse_pkg_install "${want[@]}"
}

_pulse_toolchain_main() {
    local PULSE_LOG_TAG=toolchain mode=${1:-build} missing_pkgs=() have
    case $mode in
        build | dev) ;;
        *)
            pulse_err "usage: toolchain.sh [build|dev]"
            return 2
            ;;
    esac

    # C toolchain: cc links every Rust binary; crt1.o comes with the libc headers package.
    if ! command -v cc >/dev/null 2>&1; then
        missing_pkgs+=(gcc libc6-dev)
    elif [[ $(cc -print-file-name=crt1.o 2>/dev/null) != /* ]]; then
        missing_pkgs+=(libc6-dev)
    fi
    if ! command -v pkg-config >/dev/null 2>&1; then
        missing_pkgs+=(pkg-config)
    fi
    if ((${#missing_pkgs[@]})); then
        pulse_pkg_install "${missing_pkgs[@]}" || return 1
    fi

    _pulse_cargo_on_path
    if ! cargo --version >/dev/null 2>&1 || ! rustc --version >/dev/null 2>&1; then
        local apt_pkgs=(cargo rustc)
        if [[ $mode == dev ]]; then
            apt_pkgs+=(rustfmt rust-clippy)
        fi
        if command -v rustup >/dev/null 2>&1; then
            # rustup without a default toolchain leaves cargo as a proxy that cannot run.
            pulse_err "rustup is installed but has no usable toolchain"
            _pulse_rustup_help
            return 1
        fi
        _pulse_rustup_help
        _pulse_rust_from_apt "${apt_pkgs[@]}" || return 1
        _pulse_cargo_on_path
        if ! cargo --version >/dev/null 2>&1; then
            pulse_err "cargo is still not usable"
            return 1
        fi
    fi

    have=$(_pulse_rustc_version)
    if ! _pulse_version_ge "$have" "$PULSE_MIN_RUST"; then
        pulse_err "rustc $have is older than $PULSE_MIN_RUST, which the locked dependencies need"
        if command -v rustup >/dev/null 2>&1; then
            pulse_err "update it with: rustup update stable"
        else
            _pulse_rustup_help
        fi
        return 1
    fi

    # mold links the test binaries several times faster; everything builds without it.
    if [[ $mode == dev ]] && ! command -v mold >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        pulse_pkg_install mold || pulse_log "linking with cc's default linker instead of mold"
    fi
    _pulse_use_mold

    if [[ $mode == dev ]]; then
        local components=()
        cargo fmt --version >/dev/null 2>&1 || components+=(rustfmt)
        cargo clippy --version >/dev/null 2>&1 || components+=(clippy)
        if ((${#components[@]})); then
            if command -v rustup >/dev/null 2>&1; then
                pulse_log "adding rustup components: ${components[*]}"
                rustup component add "${components[@]}" || return 1
            else
                local debs=()
                [[ " ${components[*]} " == *" rustfmt "* ]] && debs+=(rustfmt)
                [[ " ${components[*]} " == *" clippy "* ]] && debs+=(rust-clippy)
                pulse_pkg_install "${debs[@]}" || return 1
            fi
            if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
                _pulse_rustup_help "rustfmt, clippy"
                return 1
            fi
        fi
    fi
}

# Links through mold where it is installed, unless PULSE_LINKER=cc: rustc's cc finds mold's
# `ld` through -B, a flag exported for cargo (CARGO_TARGET_<host>_RUSTFLAGS) when this file is
# sourced. It names no path of the checkout, so every clone of the repository reuses the
# dependencies a shared build folder (CARGO_TARGET_DIR) has compiled: a linker named by a
# path inside the checkout would make each clone compile them all again.
_pulse_use_mold() {
    [[ ${PULSE_LINKER:-mold} == mold ]] || return 0
    local mold dir triple var
    mold=$(command -v mold 2>/dev/null) || return 0
    dir=$(cd "$(dirname "$mold")/../libexec/mold" 2>/dev/null && pwd) || return 0
    [[ -x $dir/ld ]] || return 0
    triple=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')
    [[ -n $triple ]] || return 0
    var=CARGO_TARGET_$(tr 'a-z.-' 'A-Z__' <<<"$triple")_RUSTFLAGS
    [[ ${!var:-} == *"-B$dir"* ]] && return 0
    export "$var=${!var:+${!var} }-C link-arg=-B$dir"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
fi
_pulse_toolchain_main "$@"
