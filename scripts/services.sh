#!/usr/bin/env bash
# Makes sure the PostgreSQL and Redis named by DATABASE_URL and REDIS_URL answer. Servers that
# already answer are used as they are; otherwise project-local ones are started under
# $PULSE_HOME (installing the packages first on Debian/Ubuntu when the binaries are missing).
# Safe to run repeatedly: once both answer it returns in well under a second.
#
#   bash scripts/services.sh          # prints `export ...` lines: eval "$(bash scripts/services.sh)"
#   source scripts/services.sh        # exports into the calling shell (always "start")
#   bash scripts/services.sh stop     # stops the project-local servers under $PULSE_HOME
#
# Exports DATABASE_URL, REDIS_URL, PULSE_HOME and PULSE_PG_BIN (the directory holding initdb,
# pg_ctl and postgres, which the integration tests use to start throwaway clusters).

# shellcheck source=scripts/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh" || return 1 2>/dev/null || exit 1

# ---------------------------------------------------------------------------------------------
# URL parsing: scheme://[user[:password]@]host[:port][/path][?query], IPv6 hosts in brackets.
# Results land in the _pulse_url_* globals.

_pulse_urldecode() {
    printf '%b' "${1//%/\\x}"
}

_pulse_parse_url() {
    local rest=$1 userinfo="" hostport after
    _pulse_url_user="" _pulse_url_pass="" _pulse_url_host="" _pulse_url_port="" _pulse_url_path=""
    rest=${rest#*://}
    rest=${rest%%\?*}
    rest=${rest%%#*}
    if [[ $rest == */* ]]; then
        _pulse_url_path=$(_pulse_urldecode "${rest#*/}")
        rest=${rest%%/*}
    fi
    hostport=$rest
    if [[ $rest == *@* ]]; then
        userinfo=${rest%@*}
        hostport=${rest##*@}
    fi
    if [[ -n $userinfo ]]; then
        _pulse_url_user=$(_pulse_urldecode "${userinfo%%:*}")
        if [[ $userinfo == *:* ]]; then
            _pulse_url_pass=$(_pulse_urldecode "${userinfo#*:}")
        fi
    fi
    if [[ $hostport == \[* ]]; then
        _pulse_url_host=${hostport#\[}
        _pulse_url_host=${_pulse_url_host%%\]*}
        after=${hostport#*\]}
        if [[ $after == :* ]]; then
            _pulse_url_port=${after#:}
        fi
    else
        _pulse_url_host=${hostport%%:*}
        if [[ $hostport == *:* ]]; then
            _pulse_url_port=${hostport##*:}
        fi
    fi
}

# Only servers on this machine can be started by us; anything else must already answer.
_pulse_is_local_host() {
    case $1 in
        127.0.0.1 | localhost | ::1) return 0 ;;
        *) return 1 ;;
    esac
}

_pulse_with_timeout() {
    local secs=$1
    shift
    if command -v timeout >/dev/null 2>&1; then
        timeout "$secs" "$@"
    else
        "$@"
    fi
}

# ---------------------------------------------------------------------------------------------
# PostgreSQL

# Prints the first directory that holds a usable initdb/pg_ctl/postgres triple.
_pulse_find_pg_bin() {
    local d found cands=()
    if [[ -n ${PULSE_PG_BIN:-} ]]; then
        cands+=("$PULSE_PG_BIN")
    fi
    if command -v pg_config >/dev/null 2>&1; then
        cands+=("$(pg_config --bindir 2>/dev/null || true)")
    fi
    # Debian/Ubuntu keep server binaries off PATH, one directory per major version; newest first.
    for d in /usr/lib/postgresql/*/bin; do
        if [[ -d $d ]]; then
            found+="$d"$'\n'
        fi
    done
    if [[ -n ${found:-} ]]; then
        while IFS= read -r d; do
            cands+=("$d")
        done < <(printf '%s' "$found" | sort -rV)
    fi
    cands+=(/usr/local/pgsql/bin)
    if d=$(command -v initdb 2>/dev/null); then
        cands+=("$(dirname "$(readlink -f "$d")")")
    fi
    for d in "${cands[@]}"; do
        if [[ -n $d && -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then
            printf '%s\n' "$d"
            return 0
        fi
    done
    return 1
}

# Resolves a client tool, preferring the copy next to the server binaries.
_pulse_pg_tool() {
    if [[ -x ${PULSE_PG_BIN:-}/$1 ]]; then
        printf '%s\n' "$PULSE_PG_BIN/$1"
    else
        command -v "$1"
    fi
}

_pulse_ensure_pg_binaries() {
    local bin
    if bin=$(_pulse_find_pg_bin) && [[ -n $(_pulse_pg_tool psql) && -n $(_pulse_pg_tool pg_isready) ]]; then
        PULSE_PG_BIN=$bin
        return 0
    fi
    if [[ -n ${PULSE_PG_BIN:-} ]]; then
        pulse_warn "PULSE_PG_BIN=$PULSE_PG_BIN lacks initdb/pg_ctl/postgres; looking elsewhere"
    fi
    pulse_log "PostgreSQL server binaries not found (the server and the tests need initdb and postgres)"
    pulse_pkg_install postgresql || {
        pulse_err "install PostgreSQL (server and client), then rerun, or set PULSE_PG_BIN to the directory holding initdb, pg_ctl and postgres"
        return 1
    }
    if ! bin=$(_pulse_find_pg_bin); then
        pulse_err "PostgreSQL was installed but initdb/pg_ctl/postgres are still not found; set PULSE_PG_BIN"
        return 1
    fi
    PULSE_PG_BIN=$bin
}

# pg_isready's status: 0 accepting, 1 rejecting (starting up), 2 no answer, 3 bad parameters.
_pulse_pg_isready() {
    # -U/-d only keep the probe from logging "role ... does not exist" for the OS user.
    PGCONNECT_TIMEOUT=3 "$(_pulse_pg_tool pg_isready)" -q -t 3 -h "$_pulse_pg_host" -p "$_pulse_pg_port" \
        -U "$_pulse_pg_user" -d "$_pulse_pg_db"
}

# Whether the configured user can open the configured database.
_pulse_pg_db_ok() {
    PGCONNECT_TIMEOUT=5 "$(_pulse_pg_tool psql)" -X -q -A -t -w -d "$DATABASE_URL" -c 'select 1' >/dev/null 2>&1
}

# postgres refuses to run as root, so as root the cluster belongs to the `postgres` OS user.
_pulse_pg_as_owner() {
    if ! pulse_is_root; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && su postgres -s /bin/bash -c "$(printf '%q ' "$@")")
    fi
}

_pulse_pg_wait_ready() {
    local secs=$1 i rc
    for ((i = 0; i < secs * 5; i++)); do
        rc=0
        _pulse_pg_isready || rc=$?
        if [[ $rc -eq 0 ]]; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# Starts (initialising first if needed) the project-local cluster for the configured port.
_pulse_pg_start_local() {
    local lockfd=$1 dir data log sock owner="" conf
    dir=$PULSE_HOME/pg/$_pulse_pg_port
    data=$dir/data
    log=$dir/postgres.log
    # Unix socket paths are limited to ~107 bytes; deep checkouts fall back to the temp dir.
    sock=$dir
    if ((${#sock} + 20 > 100)); then
        sock=${TMPDIR:-/tmp}/pulse-pg-$(id -u)-$_pulse_pg_port
    fi
    mkdir -p "$dir" "$sock" || return 1
    if pulse_is_root; then
        if ! getent passwd postgres >/dev/null 2>&1; then
            pulse_err "running as root, and PostgreSQL refuses root; need a 'postgres' OS user to own $data (the Debian package creates it)"
            return 1
        fi
        owner=postgres
        chown postgres: "$dir" "$sock" || return 1
        if ! _pulse_pg_as_owner test -w "$dir"; then
            pulse_err "the postgres OS user cannot reach $dir (a parent directory is private); set PULSE_HOME to a directory it can reach, e.g. /var/tmp/pulse"
            return 1
        fi
    fi

    if [[ ! -s $data/PG_VERSION ]]; then
        # A data dir without PG_VERSION is a failed earlier initdb; it is ours and unusable.
        rm -rf "$data"
        pulse_log "initialising a PostgreSQL cluster in $data"
        if ! _pulse_pg_as_owner "$PULSE_PG_BIN/initdb" -D "$data" -U "$_pulse_pg_user" -A trust \
            -E UTF8 --no-locale >"$dir/initdb.log" 2>&1; then
            pulse_err "initdb failed; see $dir/initdb.log:"
            tail -n 20 "$dir/initdb.log" >&2
            return 1
        fi
    fi
    local want have
    # "postgres (PostgreSQL) 15.4 (Debian ...)" -> 15, as in PG_VERSION.
    want=$("$PULSE_PG_BIN/postgres" --version | awk '{print $3}')
    want=${want%%.*}
    want=${want%%[!0-9]*}
    have=$(cat "$data/PG_VERSION")
    if [[ $want != "$have" ]]; then
        pulse_err "$data was created by PostgreSQL $have but $PULSE_PG_BIN is $want; delete $dir to start afresh"
        return 1
    fi

    # Port, address and socket live in an included file so a changed URL only rewrites that file.
    # Both loopback addresses, so 127.0.0.1, ::1 and localhost all reach the same cluster (a
    # missing IPv6 loopback only costs a warning in the log).
    conf="port = $_pulse_pg_port
listen_addresses = '127.0.0.1, ::1'
unix_socket_directories = '${sock//\'/\'\'}'"
    printf '%s\n' "$conf" >"$data/pulse.conf" || return 1
    if ! grep -q "^include_if_exists = 'pulse.conf'" "$data/postgresql.conf"; then
        printf "\ninclude_if_exists = 'pulse.conf'\n" >>"$data/postgresql.conf" || return 1
    fi
    if [[ -n $owner ]]; then
        chown "$owner": "$data/pulse.conf" "$data/postgresql.conf" || return 1
    fi

    if _pulse_pg_as_owner "$PULSE_PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        pulse_log "PostgreSQL in $data is already running; waiting for it"
        return 0
    fi
    pulse_log "starting PostgreSQL on $_pulse_pg_host:$_pulse_pg_port (log: $log)"
    if [[ -n $owner ]]; then
        touch "$log" && chown "$owner": "$log"
    fi
    # The lock descriptor is closed for the server so it does not hold our lock while it runs.
    if ! _pulse_pg_as_owner "$PULSE_PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 60 start \
        >/dev/null {lockfd}>&-; then
        pulse_err "PostgreSQL did not start; last lines of $log:"
        tail -n 20 "$log" >&2
        return 1
    fi
}

# Creates the role and database from DATABASE_URL when missing, connecting as whichever
# administrator works: the URL's user, then `postgres` over TCP, then (as root) `postgres` over
# the local socket, which Debian's own cluster trusts by peer authentication.
_pulse_pg_create_db() {
    local psql sql admin=() role_sql="format('CREATE ROLE %I LOGIN CREATEDB', :'u')"
    psql=$(_pulse_pg_tool psql)
    local common=(-X -q -w -v ON_ERROR_STOP=1 -d postgres)
    if PGPASSWORD=$_pulse_pg_pass "$psql" "${common[@]}" -h "$_pulse_pg_host" -p "$_pulse_pg_port" \
        -U "$_pulse_pg_user" -c 'select 1' >/dev/null 2>&1; then
        admin=(env PGPASSWORD="$_pulse_pg_pass" "$psql" "${common[@]}" -h "$_pulse_pg_host"
            -p "$_pulse_pg_port" -U "$_pulse_pg_user")
    elif "$psql" "${common[@]}" -h "$_pulse_pg_host" -p "$_pulse_pg_port" -U postgres \
        -c 'select 1' >/dev/null 2>&1; then
        admin=("$psql" "${common[@]}" -h "$_pulse_pg_host" -p "$_pulse_pg_port" -U postgres)
    elif pulse_is_root && getent passwd postgres >/dev/null 2>&1 &&
        _pulse_pg_as_owner "$psql" "${common[@]}" -p "$_pulse_pg_port" -c 'select 1' >/dev/null 2>&1; then
        admin=(_pulse_pg_as_owner "$psql" "${common[@]}" -p "$_pulse_pg_port")
    else
        pulse_err "cannot connect to PostgreSQL at $_pulse_pg_host:$_pulse_pg_port as '$_pulse_pg_user' or 'postgres' to create database '$_pulse_pg_db'"
        return 1
    fi
    if [[ -n $_pulse_pg_pass ]]; then
        # The password travels on stdin rather than argv so it does not show up in ps.
        role_sql="format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'u', '${_pulse_pg_pass//\'/\'\'}')"
    fi
    sql="SELECT $role_sql
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'u') \\gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'d', :'u')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'d') \\gexec"
    if ! printf '%s\n' "$sql" | "${admin[@]}" -v u="$_pulse_pg_user" -v d="$_pulse_pg_db" -f - >/dev/null; then
        pulse_err "creating role '$_pulse_pg_user' / database '$_pulse_pg_db' failed"
        return 1
    fi
    pulse_log "created database '$_pulse_pg_db' (owner '$_pulse_pg_user') where missing"
}

_pulse_ensure_postgres() {
    _pulse_parse_url "$DATABASE_URL"
    _pulse_pg_host=${_pulse_url_host:-127.0.0.1}
    _pulse_pg_port=${_pulse_url_port:-5432}
    _pulse_pg_user=${_pulse_url_user:-postgres}
    _pulse_pg_pass=$_pulse_url_pass
    _pulse_pg_db=${_pulse_url_path:-$_pulse_pg_user}

    _pulse_ensure_pg_binaries || return 1

    if _pulse_pg_isready && _pulse_pg_db_ok; then
        pulse_log "PostgreSQL answers at $_pulse_pg_host:$_pulse_pg_port, database '$_pulse_pg_db' ready"
        return 0
    fi

    local lockfd="" rc=0
    pulse_lock lockfd "$PULSE_HOME/locks/pg-$_pulse_pg_port.lock" || return 1
    _pulse_pg_setup "$lockfd" || rc=$?
    pulse_unlock "$lockfd"
    return "$rc"
}

# Slow path, run under the per-port lock: a parallel run may have done the work meanwhile.
_pulse_pg_setup() {
    local lockfd=$1 rc=0
    _pulse_pg_isready || rc=$?
    if [[ $rc -eq 1 ]]; then
        pulse_log "PostgreSQL at $_pulse_pg_host:$_pulse_pg_port is starting up; waiting"
        _pulse_pg_wait_ready 60 || {
            pulse_err "PostgreSQL at $_pulse_pg_host:$_pulse_pg_port kept rejecting connections"
            return 1
        }
    elif [[ $rc -ne 0 ]]; then
        if ! _pulse_is_local_host "$_pulse_pg_host"; then
            pulse_err "PostgreSQL at $_pulse_pg_host:$_pulse_pg_port does not answer, and only a local one (127.0.0.1, localhost, ::1) can be started here"
            return 1
        fi
        _pulse_pg_start_local "$lockfd" || return 1
        _pulse_pg_wait_ready 30 || {
            pulse_err "PostgreSQL started but does not answer at $_pulse_pg_host:$_pulse_pg_port"
            return 1
        }
    fi
    if _pulse_pg_db_ok; then
        pulse_log "PostgreSQL answers at $_pulse_pg_host:$_pulse_pg_port, database '$_pulse_pg_db' ready"
        return 0
    fi
    _pulse_pg_create_db || return 1
    if ! _pulse_pg_db_ok; then
        pulse_err "still cannot open $DATABASE_URL:"
        "$(_pulse_pg_tool psql)" -X -q -w -d "$DATABASE_URL" -c 'select 1' >/dev/null || true
        pulse_err "if the server wants a password, put it in DATABASE_URL, or point DATABASE_URL at a free port so a project-local trust-auth cluster is started"
        return 1
    fi
    pulse_log "PostgreSQL answers at $_pulse_pg_host:$_pulse_pg_port, database '$_pulse_pg_db' ready"
}

# ---------------------------------------------------------------------------------------------
# Redis

# Host, port and credentials are passed separately because redis-cli -u does not percent-decode.
_pulse_redis_ping() {
    local out args=(-h "$_pulse_redis_host" -p "$_pulse_redis_port")
    if [[ $REDIS_URL == rediss://* ]]; then
        args+=(--tls)
    fi
    if [[ -n $_pulse_redis_user ]]; then
        args+=(--user "$_pulse_redis_user")
    fi
    out=$(REDISCLI_AUTH=$_pulse_redis_pass _pulse_with_timeout 5 redis-cli "${args[@]}" ping 2>/dev/null) ||
        return 1
    [[ $out == PONG ]]
}

_pulse_ensure_redis_binaries() {
    if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
        return 0
    fi
    pulse_log "redis-server/redis-cli not found"
    pulse_pkg_install redis-server redis-tools || {
        pulse_err "install Redis (redis-server and redis-cli), then rerun"
        return 1
    }
    if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
        pulse_err "Redis was installed but redis-server/redis-cli are still not on PATH"
        return 1
    fi
}

_pulse_ensure_redis() {
    _pulse_parse_url "$REDIS_URL"
    _pulse_redis_host=${_pulse_url_host:-127.0.0.1}
    _pulse_redis_port=${_pulse_url_port:-6379}
    _pulse_redis_pass=$_pulse_url_pass
    _pulse_redis_user=$_pulse_url_user

    _pulse_ensure_redis_binaries || return 1

    if _pulse_redis_ping; then
        pulse_log "Redis answers at $_pulse_redis_host:$_pulse_redis_port"
        return 0
    fi

    local lockfd="" rc=0
    pulse_lock lockfd "$PULSE_HOME/locks/redis-$_pulse_redis_port.lock" || return 1
    _pulse_redis_setup "$lockfd" || rc=$?
    pulse_unlock "$lockfd"
    return "$rc"
}

_pulse_redis_setup() {
    local lockfd=$1 dir conf i
    if _pulse_redis_ping; then
        pulse_log "Redis answers at $_pulse_redis_host:$_pulse_redis_port"
        return 0
    fi
    if ! _pulse_is_local_host "$_pulse_redis_host"; then
        pulse_err "Redis at $_pulse_redis_host:$_pulse_redis_port does not answer, and only a local one (127.0.0.1, localhost, ::1) can be started here"
        return 1
    fi
    dir=$PULSE_HOME/redis/$_pulse_redis_port
    mkdir -p "$dir" || return 1
    # Credentials in REDIS_URL must be known to the server too, or AUTH fails; they go in a
    # private config file rather than on the command line.
    conf=$dir/redis.conf
    (umask 077 && : >"$conf") || return 1
    local qpass=${_pulse_redis_pass//\\/\\\\}
    qpass=${qpass//\"/\\\"}
    if [[ -n $_pulse_redis_user && $_pulse_redis_user != default ]]; then
        printf 'user "%s" on ">%s" ~* &* +@all\n' "$_pulse_redis_user" "$qpass" >"$conf"
    elif [[ -n $_pulse_redis_pass ]]; then
        printf 'requirepass "%s"\n' "$qpass" >"$conf"
    fi
    local bind=127.0.0.1
    if [[ $_pulse_redis_host == ::1 ]]; then
        bind=::1
    fi
    pulse_log "starting Redis on $_pulse_redis_host:$_pulse_redis_port (log: $dir/redis.log)"
    if ! redis-server "$conf" --daemonize yes --port "$_pulse_redis_port" --bind "$bind" \
        --dir "$dir" --appendonly yes --logfile "$dir/redis.log" --pidfile "$dir/redis.pid" \
        >/dev/null {lockfd}>&-; then
        pulse_err "redis-server failed to start; last lines of $dir/redis.log:"
        tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
        return 1
    fi
    for ((i = 0; i < 150; i++)); do
        if _pulse_redis_ping; then
            pulse_log "Redis answers at $_pulse_redis_host:$_pulse_redis_port"
            return 0
        fi
        sleep 0.2
    done
    pulse_err "Redis started but does not answer PING at $_pulse_redis_host:$_pulse_redis_port; last lines of $dir/redis.log:"
    tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
    return 1
}

# ---------------------------------------------------------------------------------------------

# Stops every project-local server under $PULSE_HOME (never servers we did not start).
_pulse_services_stop() {
    local data pidfile bin port pid i
    for data in "$PULSE_HOME"/pg/*/data; do
        [[ -f $data/postmaster.pid ]] || continue
        bin=$(_pulse_find_pg_bin) || {
            pulse_err "cannot find pg_ctl to stop $data"
            return 1
        }
        pulse_log "stopping PostgreSQL in $data"
        _pulse_pg_as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null || return 1
    done
    for pidfile in "$PULSE_HOME"/redis/*/redis.pid; do
        [[ -f $pidfile ]] || continue
        port=$(basename "$(dirname "$pidfile")")
        pid=$(cat "$pidfile")
        # SIGTERM is Redis's graceful shutdown and needs no password; the name check guards
        # against a stale pid file naming an unrelated process.
        if [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server* ]]; then
            pulse_log "stopping Redis on port $port"
            kill -TERM "$pid" || return 1
            for ((i = 0; i < 50; i++)); do
                [[ -d /proc/$pid && $(cat "/proc/$pid/stat" 2>/dev/null) != *") Z "* ]] || break
                sleep 0.2
            done
            if [[ -d /proc/$pid && $(cat "/proc/$pid/stat" 2>/dev/null) != *") Z "* ]]; then
                pulse_err "Redis (pid $pid) is still running; see $(dirname "$pidfile")/redis.log"
                return 1
            fi
        fi
        rm -f "$pidfile"
    done
}

_pulse_services_main() {
    local PULSE_LOG_TAG=services
    DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/pulse}
    REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
    PULSE_HOME=${PULSE_HOME:-$PULSE_REPO_ROOT/.pulse}
    if [[ $PULSE_HOME != /* ]]; then
        PULSE_HOME=$PWD/$PULSE_HOME
    fi
    export DATABASE_URL REDIS_URL PULSE_HOME

    case ${1:-start} in
        start | "") ;;
        stop)
            _pulse_services_stop
            return
            ;;
        *)
            pulse_err "usage: services.sh [start|stop]"
            return 2
            ;;
    esac

    _pulse_ensure_postgres || return 1
    _pulse_ensure_redis || return 1
    export PULSE_PG_BIN
    pulse_log "PULSE_PG_BIN=$PULSE_PG_BIN"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    _pulse_services_main "$@"
    if [[ ${1:-start} == start ]]; then
        printf 'export DATABASE_URL=%q\nexport REDIS_URL=%q\nexport PULSE_HOME=%q\nexport PULSE_PG_BIN=%q\n' \
            "$DATABASE_URL" "$REDIS_URL" "$PULSE_HOME" "$PULSE_PG_BIN"
    fi
else
    # Sourced: the caller's positional parameters are not ours, so always "start".
    _pulse_services_main start
fi
