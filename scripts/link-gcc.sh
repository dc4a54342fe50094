#!/bin/sh
# The linker rustc calls (.cargo/config.toml names it): the system's cc, through mold where mold
# is installed (`bash scripts/toolchain.sh dev` installs it). Each test binary links the whole
# server, and mold links it several times faster than the default ld; without mold, or with
# PULSE_LINKER=cc, this is plain cc. See docs/benchmarks.md, "The development loop".
# The name ends in -gcc because rustc picks the flags it passes a linker by the linker's name.
if [ "${PULSE_LINKER:-mold}" = mold ] && mold=$(command -v mold 2>/dev/null); then
    dir=$(dirname "$mold")/../libexec/mold
    if [ -x "$dir/ld" ]; then
        exec cc -B"$dir" "$@"
    fi
fi
exec cc "$@"
