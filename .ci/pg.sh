# shellcheck shell=bash
# A throw-away PostgreSQL cluster on a free loopback port, for CI and local test runs.
#
#   source .ci/pg.sh
#   pg_start            # installs Debian's postgresql if missing; sets PG_URL, PG_PORT, PG_DIR
#   ...                 # connect with postgresql+psycopg://portal@127.0.0.1:$PG_PORT/postgres
#   pg_stop             # stops the server and removes PG_DIR (safe to call more than once)
#
# The server never runs as root (PostgreSQL refuses): as root it runs as the `postgres`
# system user of the Debian package, or a dedicated `portal-ci` user created on the spot;
# as anyone else it runs as that user. Authentication is `trust`, TCP on 127.0.0.1 only,
# the Unix socket in the cluster's own directory, durability switched off for speed.

PG_USER=${PG_USER:-}
PG_BIN=${PG_BIN:-}
PG_DIR=${PG_DIR:-}
PG_PORT=${PG_PORT:-}
PG_URL=${PG_URL:-}

_pg_sudo() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

_pg_find_bin() {
    local pg_ctl
    pg_ctl=$(ls -1 /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$pg_ctl" ] && dirname "$pg_ctl"
}

pg_install() {
    PG_BIN=$(_pg_find_bin || true)
    if [ -z "$PG_BIN" ]; then
        echo "pg.sh: installing Debian's postgresql"
        _pg_sudo env DEBIAN_FRONTEND=noninteractive apt-get update
        _pg_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
        PG_BIN=$(_pg_find_bin || true)
        [ -n "$PG_BIN" ] || { echo "pg.sh: pg_ctl not found after installing postgresql" >&2; return 1; }
    fi
}

_pg_choose_user() {
    if [ "$(id -u)" != 0 ]; then
        PG_USER=$(id -un)
    elif id -u postgres >/dev/null 2>&1; then
        PG_USER=postgres
    else
        PG_USER=portal-ci
        id -u "$PG_USER" >/dev/null 2>&1 ||
            useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
    fi
}

# Run a command as the cluster's user, from inside the cluster's directory.
_pg_as_user() {
    if [ "$(id -u)" = 0 ]; then
        (cd "$PG_DIR" && runuser -u "$PG_USER" -- "$@")
    else
        (cd "$PG_DIR" && "$@")
    fi
}

# A port nothing listens on. Any Python will do (a fresh clone's PATH may only have python3.13);
# without one, a random high port (pg_start tries three).
_pg_free_port() {
    local python
    python=$(command -v python3 || command -v python || compgen -c python3. | sort -V | tail -n 1 ||
        true)
    if [ -n "$python" ]; then
        "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    else
        echo $((20000 + RANDOM % 40000))
    fi
}

pg_start() {
    pg_install
    _pg_choose_user
    # /tmp (not $TMPDIR, which may sit under an inaccessible home) so the server's user can reach it.
    PG_DIR=$(mktemp -d /tmp/portal-pg.XXXXXX)
    mkdir "$PG_DIR/data" "$PG_DIR/socket"
    if [ "$(id -u)" = 0 ]; then chown -R "$PG_USER" "$PG_DIR"; fi

    _pg_as_user "$PG_BIN/initdb" -D "$PG_DIR/data" -A trust -U portal -E UTF8 --locale=C.UTF-8 \
        --no-sync >"$PG_DIR/initdb.log" 2>&1 ||
        { cat "$PG_DIR/initdb.log" >&2; echo "pg.sh: initdb failed" >&2; return 1; }

    local attempt
    for attempt in 1 2 3; do    # another process may grab the free port before the server does
        PG_PORT=$(_pg_free_port)
        if _pg_as_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
            -o "-p $PG_PORT -k $PG_DIR/socket -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >/dev/null; then
            PG_URL="postgresql+psycopg://portal@127.0.0.1:$PG_PORT/postgres"
            echo "pg.sh: PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}') running as $PG_USER on 127.0.0.1:$PG_PORT (data in $PG_DIR)"
            return 0
        fi
        echo "pg.sh: start attempt $attempt on port $PG_PORT failed" >&2
    done
    cat "$PG_DIR/server.log" >&2 || true
    return 1
}

pg_stop() {
    [ -n "$PG_DIR" ] || return 0
    if [ -f "$PG_DIR/data/postmaster.pid" ]; then
        _pg_as_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop >/dev/null ||
            _pg_as_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null ||
            echo "pg.sh: could not stop the server in $PG_DIR" >&2
    fi
    rm -rf "$PG_DIR"
    echo "pg.sh: stopped the cluster and removed $PG_DIR"
    PG_DIR=
}
