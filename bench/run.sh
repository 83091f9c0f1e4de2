#!/usr/bin/env bash
# Runs one load scenario against a fresh release server on loopback and
# prints the load tool's table; JSON reports go to bench/results/.
#
#   bench/run.sh spectators | rooms | longpoll | poll | idle | slow | all
#
# Environment: PORT (17900), DURATION (window per run, default per
# scenario), SPECTATORS ("1000 5000 10000"), RAMP (connections/s, 1000),
# OUT (bench/results). Every run is bounded: ramp + window + a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: bench/run.sh spectators|rooms|longpoll|poll|idle|slow|all" >&2
    exit 2
}
SCENARIO=${1:-}
[ -n "$SCENARIO" ] || usage
shift || true
PORT=${PORT:-17900}
OUT=${OUT:-bench/results}
RAMP=${RAMP:-1000}
mkdir -p "$OUT"

cargo build --release --locked -q -p game-server -p tickwire-load
SERVER=./target/release/game-server
LOAD=./target/release/tickwire-load
# Both processes may hold 10,000+ sockets; 20,000 is this machine's hard limit.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap stop_server EXIT

start_server() {
    "$SERVER" --bind "127.0.0.1:$PORT" --seed 1 "$@" >"$OUT/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        if curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
            return
        fi
        sleep 0.1
    done
    echo "server did not start; see $OUT/server.log" >&2
    exit 1
}

machine() {
    echo "== $1 on $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo);" \
        "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
    top -bn1 | sed -n '7,12p' >"$OUT/$1.top.txt" 2>/dev/null || true
}

# load LABEL ARGS...: one load run against the running server.
load() {
    local label=$1
    shift
    machine "$label"
    "$LOAD" --server "http://127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
        --ramp "$RAMP" --label "$label" --json "$OUT/$label.json" "$@"
    echo
}

spectators() {
    for n in ${SPECTATORS:-1000 5000 10000}; do
        start_server
        load "spectators-$n" --duration "${DURATION:-15s}" --ws 16 --sse "$n"
        stop_server
    done
}

rooms() {
    start_server
    load rooms --duration "${DURATION:-15s}" --ws 1000 --rooms 64 --room room
    stop_server
}

longpoll() {
    start_server
    load longpoll --duration "${DURATION:-15s}" --longpoll 1000 --rooms 64 --room room
    stop_server
}

poll() {
    # 200 players need 13 rooms of 16.
    start_server
    load poll --duration "${DURATION:-15s}" --poll 200 --poll-every 250ms --rooms 13 --room room
    stop_server
}

idle() {
    # Separate servers, so each figure is that transport's alone, and each
    # process stays within 20,000 descriptors.
    start_server
    load idle-ws --duration "${DURATION:-10s}" --idle-ws 10000
    stop_server
    start_server
    load idle-sse --duration "${DURATION:-10s}" --idle-sse 10000
    stop_server
}

slow() {
    # The same 16 players with and without 200 spectators that never read.
    start_server
    load slow-baseline --duration "${DURATION:-20s}" --ws 16
    stop_server
    start_server
    load slow-stalled --duration "${DURATION:-20s}" --ws 16 --stalled-sse 100 --stalled-ws 100
    stop_server
}

case "$SCENARIO" in
    spectators) spectators ;;
    rooms) rooms ;;
    longpoll) longpoll ;;
    poll) poll ;;
    idle) idle ;;
    slow) slow ;;
    all)
        spectators
        rooms
        longpoll
        poll
        idle
        slow
        ;;
    *) usage ;;
esac
