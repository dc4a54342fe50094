#!/usr/bin/env bash
# The alerter's baseline reads for one rule over a dimension of 1,000 keys, as PostgreSQL
# answers them: one statement per key (as it read them before) against one statement for all
# keys. A scratch database holds the rollups' table (the columns the statements read, the
# same primary key as migrations/V2) with 66 minutes of every key. The statements are the
# alerter's (`db::alerts::baseline_windows`) with its parameters written in: a 5-minute window
# and a 60-minute baseline.
#
#   bash scripts/experiments/alert_baselines.sh   # needs psql and pgbench, PostgreSQL at PGHOST
set -euo pipefail
export PGHOST="${PGHOST:-127.0.0.1}" PGUSER="${PGUSER:-postgres}"
db="alert_baselines_$$"
work="$(mktemp -d)"
trap 'psql -qc "DROP DATABASE IF EXISTS $db" >/dev/null; rm -rf "$work"' EXIT
psql -qc "CREATE DATABASE $db"
psql -q -d "$db" <<'SQL'
CREATE TABLE metric_rollups (
    minute timestamptz NOT NULL, dimension text NOT NULL, key text NOT NULL,
    posts bigint NOT NULL DEFAULT 0, sentiment_sum double precision NOT NULL DEFAULT 0,
    negative bigint NOT NULL DEFAULT 0, neutral bigint NOT NULL DEFAULT 0,
    positive bigint NOT NULL DEFAULT 0, PRIMARY KEY (dimension, key, minute));
INSERT INTO metric_rollups
SELECT date_trunc('minute', now()) - make_interval(mins => m), 'product', 'p' || k,
       1 + k % 7, 0.1, 0, 1 + k % 7, 0
FROM generate_series(0, 999) k, generate_series(0, 65) m;
ANALYZE metric_rollups;
SQL
window="date_trunc('minute', now()) - interval '4 minutes'"
cat > "$work/per_key.sql" <<SQL
\set k random(0, 999)
SELECT floor(extract(epoch FROM ($window - minute))::float8 / 60 / 5)::int8 AS w, sum(posts)::int8,
  (sum(sentiment_sum) / NULLIF(sum(negative + neutral + positive), 0))::float8
FROM metric_rollups WHERE dimension = 'product' AND key = 'p' || :k
  AND minute >= $window - interval '60 minutes' AND minute < $window GROUP BY 1 ORDER BY 1 DESC;
SQL
cat > "$work/all_keys.sql" <<SQL
SELECT key, floor((extract(epoch FROM ($window - minute))::float8 / 60 - 1) / 5)::int8 AS w,
  sum(posts)::int8, (sum(sentiment_sum) / NULLIF(sum(negative + neutral + positive), 0))::float8
FROM metric_rollups WHERE dimension = 'product'
  AND key = ANY(ARRAY(SELECT 'p' || g FROM generate_series(0, 999) g))
  AND minute >= $window - interval '60 minutes' AND minute < $window GROUP BY 1, 2 ORDER BY 1, 2 DESC;
SQL
grep -m1 'model name' /proc/cpuinfo || true
echo "cores: $(nproc); $(psql -tAc 'SHOW server_version')"
per_key=$(pgbench -n -f "$work/per_key.sql" -t 3000 "$db" 2>&1 | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
all_keys=$(pgbench -n -f "$work/all_keys.sql" -t 30 "$db" 2>&1 | sed -n 's/^latency average = \([0-9.]*\) ms/\1/p')
awk -v a="$per_key" -v b="$all_keys" 'BEGIN {
  printf "one key: %.3f ms, so 1,000 keys one by one: %.0f ms\n", a, a * 1000
  printf "all 1,000 keys in one statement: %.1f ms (%.1fx less)\n", b, a * 1000 / b }'
