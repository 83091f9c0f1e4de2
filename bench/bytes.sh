#!/usr/bin/env bash
# Bytes on the wire in a real game (BENCHMARKS.md, "Protocol 2"): a server
# on loopback, 16 greedy bots in `lobby` over WebSocket, then one SSE
# spectator (`curl -N`, 10 s) and one WebSocket spectator per format (the
# load tool, 10 s each). Prints bytes per tick event and per second for the
# SSE spectator, and per frame for the WebSocket ones.
#
#   bench/bytes.sh [BIN_DIR]      (default ./target/release, built here)
#
# Environment: PORT (17950), OUT (bench/results/bytes). Bounded: about 45 s.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-17950}
OUT=${OUT:-bench/results/bytes}
BIN=${1:-}
if [ -z "$BIN" ]; then
    cargo build --release --locked -q -p game-server -p tui-client -p tickwire-load
    BIN=./target/release
fi
mkdir -p "$OUT"
H=http://127.0.0.1:$PORT
"$BIN/game-server" --bind "127.0.0.1:$PORT" --seed 1 >"$OUT/server.log" 2>&1 &
SERVER=$!
BOTS=
trap 'kill $SERVER $BOTS 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fs "$H/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
"$BIN/tui-client" --headless --server "$H" --room lobby --bots 16 --bot greedy \
    --duration 40 --report json >"$OUT/bots.json" 2>"$OUT/bots.err" &
BOTS=$!
sleep 5 # the bots join and start playing
curl -sN --max-time 10 "$H/rooms/lobby/events" >"$OUT/sse.txt" || true
for f in json bincode; do
    "$BIN/tickwire-load" --server "$H" --ws-spectators 1 --format $f --duration 10s \
        --json-stdout >"$OUT/ws-$f.json" 2>/dev/null
done
wait $BOTS || echo "bots exited non-zero (see $OUT/bots.json)" >&2
BOTS=
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
raw = open(f"{out}/sse.txt", "rb").read()
kinds, total = {}, 0
for block in raw.split(b"\n\n"):
    ev, data = None, b""
    for line in block.split(b"\n"):
        if line.startswith(b"event: "):
            ev = line[7:].decode()
        elif line.startswith(b"data: "):
            data = line[6:]
    if ev in (None, "welcome"):
        continue
    total += len(block) + 2
    k = kinds.setdefault(ev, [0, 0, 0])
    k[0] += 1; k[1] += len(block) + 2; k[2] += len(data)
print(f"SSE spectator: {total} B in 10 s after the welcome = {total / 10 / 1000:.1f} KB/s")
for ev, (n, b, d) in sorted(kinds.items()):
    print(f"  event: {ev}: {n} ({n / 10:.1f}/s), {b / n:.0f} B each ({d / n:.0f} B of JSON data)")
for f in ("json", "bincode"):
    k = json.load(open(f"{out}/ws-{f}.json"))["kinds"][0]
    per = k["bytes_per_client_s"] / max(k["frames_per_client_s"], 1e-9)
    print(f"WebSocket spectator, {f}: {k['frames']} frames, {k['bytes_per_client_s']:.0f} B/s, "
          f"{per:.0f} B per frame (payload), missed {k['missed']}, resyncs {k['resyncs']}")
PY
