# shellcheck shell=bash
# Helpers shared by the scripts in this directory. Source it; it sets no shell options so it is
# safe to source from an interactive shell too.

# Guard against double sourcing (services.sh and toolchain.sh both source it).
if [[ -n ${_PULSE_LIB_LOADED:-} ]]; then
    return 0
fi
_PULSE_LIB_LOADED=1

PULSE_REPO_ROOT=${PULSE_REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

# Messages go to stderr so stdout stays usable for `eval "$(scripts/services.sh)"`.
pulse_log() { printf '%s: %s\n' "${PULSE_LOG_TAG:-pulse}" "$*" >&2; }
pulse_warn() { printf '%s: warning: %s\n' "${PULSE_LOG_TAG:-pulse}" "$*" >&2; }
pulse_err() { printf '%s: error: %s\n' "${PULSE_LOG_TAG:-pulse}" "$*" >&2; }

pulse_is_root() { [[ $(id -u) -eq 0 ]]; }

# Runs a command as root: directly when we are root, through sudo otherwise. Without a terminal
# (CI, no stdin) sudo must not wait for a password nobody can type, hence -n.
pulse_as_root() {
    if pulse_is_root; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        if [[ -t 0 && ${CI:-} != true ]]; then
            sudo "$@"
        else
            sudo -n "$@"
        fi
    else
        pulse_err "need root to run: $*  (not root, and sudo is not installed)"
        return 1
    fi
}

# Holds an exclusive lock on a file for the rest of the caller's work and stores the descriptor
# in the variable named by $1 (release with pulse_unlock). Lets concurrent runs take turns at
# installing or starting things instead of racing. Without flock(1) it degrades to no locking
# (the descriptor then points at /dev/null, so callers can treat both cases alike).
pulse_lock() {
    local __var=$1 file=$2 __fd
    if ! command -v flock >/dev/null 2>&1; then
        exec {__fd}>/dev/null || return 1
        printf -v "$__var" '%s' "$__fd"
        return 0
    fi
    mkdir -p "$(dirname "$file")" || return 1
    exec {__fd}>>"$file" || return 1
    if ! flock -w "${PULSE_LOCK_TIMEOUT:-300}" "$__fd"; then
        exec {__fd}>&-
        pulse_err "timed out waiting for lock $file"
        return 1
    fi
    printf -v "$__var" '%s' "$__fd"
}

pulse_unlock() {
    local __fd=${1:-}
    if [[ -n $__fd ]]; then
        exec {__fd}>&-
    fi
}

# Installs Debian/Ubuntu packages. Other systems get a message naming what to install.
pulse_pkg_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        pulse_err "apt-get not found; install these packages with your system's package manager: $*"
        return 1
    fi
    local lockfd="" rc=0
    # apt-get cannot run twice at once; serialise our own parallel runs, and wait for dpkg's lock
    # when something else is installing.
    pulse_lock lockfd "${PULSE_HOME:-$PULSE_REPO_ROOT/.pulse}/locks/apt.lock" || return 1
    pulse_log "installing packages: $*"
    # The lock descriptor is closed for apt so daemons its maintainer scripts start don't hold it.
    if ! pulse_as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
        update -qq {lockfd}>&-; then
        rc=1
    elif ! pulse_as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
        install -y -qq --no-install-recommends "$@" {lockfd}>&-; then
        rc=1
    fi
    pulse_unlock "$lockfd"
    if [[ $rc -ne 0 ]]; then
        pulse_err "could not install: $*  (try: sudo apt-get install -y $*)"
    fi
    return "$rc"
}
