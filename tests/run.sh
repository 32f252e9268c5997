#!/usr/bin/env bash
# Runs every PeerLink test: formatting, lints, unit tests, the integration tests against
# the real binary on SQLite and on a throwaway PostgreSQL started here on a free loopback
# port and removed afterwards, and the browser tests in headless Chromium. Installs what it
# needs (Debian packages, npm packages) when it is missing. Screenshots: tests/artifacts/.
#
#   bash tests/run.sh            # everything
#   bash tests/run.sh chat       # only tests whose name matches "chat" (nextest filter)
#                                # (the fuzz targets run only in the whole run)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[tests] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
    log "installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$PG_BIN/initdb" ]; then
    apt_install postgresql-15
fi
if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
fi
# The cluster tests start their own throwaway redis-server on free ports.
if [ ! -x /usr/bin/redis-server ]; then
    apt_install redis-server
fi
if ! cargo nextest --version >/dev/null 2>&1; then
    log "installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# --- a throwaway PostgreSQL ---------------------------------------------------------------
PG_DIR=$(mktemp -d /tmp/peerlink-pg.XXXXXX)
PG_PORT=$(free_port)
run_pg() {
    # PostgreSQL refuses to run as root; use its own account when we are root.
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
stop_pg() {
    run_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}
trap stop_pg EXIT
if [ "$(id -u)" = 0 ]; then chown postgres "$PG_DIR"; fi
run_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-instructions >/dev/null
run_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=400" start >/dev/null
export PEERLINK_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
log "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"

# --- the tests -------------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
log "cargo nextest"
cargo nextest run --workspace --no-fail-fast ${1:+-E "test(/$1/)"}

log "tus tests (tuspy)"
TUS_VENV=tests/tus/.venv
if [ ! -x "$TUS_VENV/bin/python" ]; then
    python3 -m venv "$TUS_VENV"
fi
"$TUS_VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/tus/requirements.txt
PEERLINK_BIN="$PWD/target/debug/peerlink" "$TUS_VENV/bin/python" -m pytest -q -p no:cacheprovider tests/tus

log "browser tests (Chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{print $2}'), playwright-core)"
(cd tests/browser && npm ci --no-audit --no-fund --silent)
PEERLINK_BIN="$PWD/target/debug/peerlink" node --test tests/browser/

# Only for the whole run: a filtered run is for quick checks.
if [ -z "${1:-}" ]; then
    # Without AddressSanitizer by default here (the targets are safe Rust, and overflow
    # checks stay on): the build takes half the time. The long runs use it.
    log "fuzzing: every target for ${FUZZ_SECONDS:-20} s (docs/fuzzing.md)"
    FUZZ_SANITIZER="${FUZZ_SANITIZER:-none}" bash fuzz/run.sh "${FUZZ_SECONDS:-20}"
fi
