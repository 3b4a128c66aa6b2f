# Sourced by scripts: a throwaway PostgreSQL cluster on a unix socket, run as the
# `postgres` user when we are root (initdb refuses root). Sets SIGNOFF_TEST_POSTGRES.
pg_bin=""
find_postgres() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/initdb" ] && { pg_bin=$d; return 0; }
    done
    command -v initdb >/dev/null && { pg_bin=$(dirname "$(command -v initdb)"); return 0; }
    echo "error: PostgreSQL server binaries not found; install them with: apt-get install postgresql" >&2
    return 1
}

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start_postgres() {
    find_postgres
    pg_dir=$(mktemp -d /tmp/signoff-pg.XXXXXX)
    chmod 755 "$pg_dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$pg_dir"
    pg_port=$(free_port)
    as_pg "$pg_bin/initdb" -D "$pg_dir/data" -U postgres -A trust --no-sync >/dev/null
    as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
        -o "-k $pg_dir -p $pg_port -c listen_addresses='' -c fsync=off -c max_connections=200" start >/dev/null
    SIGNOFF_TEST_POSTGRES="postgresql://postgres@/postgres?host=$pg_dir&port=$pg_port"
    # Handy for anyone poking at the test cluster with psql while it runs.
    export PG_TEST_DIR="$pg_dir" PG_TEST_PORT="$pg_port" PG_TEST_BIN="$pg_bin"
}

stop_postgres() {
    [ -n "${pg_dir:-}" ] || return 0
    as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
}
