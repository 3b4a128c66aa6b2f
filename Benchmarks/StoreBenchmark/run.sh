#!/usr/bin/env bash
# Runs every store benchmark with a release build: SQLite in a temporary folder, and PostgreSQL on
# two throwaway clusters, one with the test settings (fsync=off) and one with the defaults (fsync=on).
# Prints one JSON object per line.   Usage: Benchmarks/StoreBenchmark/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
source scripts/lib/postgres.sh
find_postgres
swift build -c release --product StoreBenchmark >&2
bench=.build/release/StoreBenchmark
work=$(mktemp -d /tmp/signoff-bench.XXXXXX)
clusters=()
cleanup() {
    for d in "${clusters[@]}"; do as_pg "$pg_bin/pg_ctl" -D "$d/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$d"; done
    rm -rf "$work"
}
trap cleanup EXIT

# cluster FSYNC -> sets $url to a fresh cluster
cluster() {
    local dir port
    dir=$(mktemp -d /tmp/signoff-benchpg.XXXXXX); chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    port=$(free_port)
    as_pg "$pg_bin/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
    as_pg "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
        -o "-k $dir -p $port -c listen_addresses='' -c fsync=$1 -c max_connections=200" start >/dev/null
    clusters+=("$dir")
    url="postgresql://postgres@/postgres?host=$dir&port=$port"
}

fresh() { # fresh URL -> a new empty database on that cluster, prints its URL
    local name="bench_$RANDOM$RANDOM"
    "$pg_bin/psql" "$1" -qc "CREATE DATABASE $name" >/dev/null
    echo "${1/@\/postgres?/@/$name?}"
}

# The cycles knobs, and what a real runner does:
#   --tasks T --batch B  T runner loops, each claiming B runs at a time and pausing/answering them one
#                        after another: T concurrent store calls, up to T*B runs in flight. A
#                        `signoff worker --concurrency N` claims N runs and runs all N at once, so
#                        T*B ~ N in flight; what the store sees is T concurrent pauses/saves/answers,
#                        which its coalescers turn into batches (bigger T: bigger batches).
#   --connections C      the PostgreSQL pool: 4, what `signoff worker` opens (`openStore`'s default).
#                        Pauses, checkpoints and finishes then run in 1 batch lane (C/4), answers in C:
#                        fewer, bigger batches. (8 connections measured ~15-25% slower on 2 cores:
#                        smaller batches, more transactions.) SQLite always has one writer connection.
#                        SIGNOFF_STORE_BATCH_LANES overrides the lanes (for measurements only).
# Both backends run the cycles with the same load (64 loops x 8 runs); PostgreSQL also with 16 loops,
# to show how the coalescers' batches shrink when fewer calls meet.
# The figures move with the machine's load: the load average is printed before and after.
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bench" supersteps --database "sqlite:$work/a.db" --runs 16 --steps 200
"$bench" cycles --database "sqlite:$work/b.db" --runs 4000 --tasks 64 --batch 8
for fsync in off on; do
    cluster $fsync
    echo "# PostgreSQL fsync=$fsync" >&2
    "$bench" supersteps --database "$(fresh "$url")" --runs 16 --steps 200 | sed "s/}$/,\"fsync\":\"$fsync\"}/"
    "$bench" cycles --database "$(fresh "$url")" --runs 4000 --tasks 64 --connections 4 --batch 8 | sed "s/}$/,\"fsync\":\"$fsync\"}/"
    "$bench" cycles --database "$(fresh "$url")" --runs 4000 --tasks 16 --connections 4 --batch 8 | sed "s/}$/,\"fsync\":\"$fsync\"}/"
    "$bench" claims --database "$(fresh "$url")" --runs 50000 --processes 2 --batch 500 | sed "s/}$/,\"fsync\":\"$fsync\"}/"
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
