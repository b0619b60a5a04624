#!/usr/bin/env bash
# Persistence benchmark: ingest of the default workload with
#   - file-format "json" (no WAL: upstream's crash-unsafe mode),
#   - file-format "wal", checkpoints.fsync "none",
#   - file-format "wal", checkpoints.fsync "always",
# then, for the "wal"/"none" run: the final snapshot at SIGTERM (time and
# size) and the restart (restore time) of the whole store.
#
# Usage: bench/persist_bench.sh [--hosts H] [--hours N]   (run from the repo root)
set -euo pipefail
HOSTS=256; HOURS=24
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) HOSTS=$2; shift 2 ;;
        --hours) HOURS=$2; shift 2 ;;
        *) echo "usage: $0 [--hosts H] [--hours N]"; exit 2 ;;
    esac
done
make -s cc-metric-store
make -s -C bench ingest_bench
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; rm -rf "$WORK"' EXIT

config() { # format fsync
    python3 - "$WORK" "$PORT" "$1" "$2" <<'PY'
import json, sys
work, port, fmt, fsync = sys.argv[1:]
c = json.load(open("config.json"))
c["main"]["addr"] = "127.0.0.1:" + port
ms = c["metric-store"]
ms["memory-cap"] = 0
ms["checkpoints"] = {"file-format": fmt, "directory": work + "/ckpt", "fsync": fsync}
json.dump(c, open(work + "/cfg.json", "w"))
PY
}

start() {
    ./cc-metric-store -config "$WORK/cfg.json" -loglevel info 2>>"$WORK/server.log" &
    PID=$!
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/api/status" && return 0
        sleep 0.05
    done
    echo "server did not start"; exit 1
}

stop() {
    kill -TERM "$PID"; wait "$PID" || true; PID=
}

ingest() { # label
    bench/ingest_bench --addr "127.0.0.1:$PORT" --hosts "$HOSTS" --hours "$HOURS" --pid "$PID" \
        | grep -E "samples accepted" | sed "s/^/$1: /"
}

for mode in "json none" "wal always" "wal none"; do
    set -- $mode
    rm -rf "$WORK/ckpt"; : > "$WORK/server.log"
    config "$1" "$2"
    start
    ingest "file-format $1, fsync $2"
    t0=$(date +%s.%N); stop; t1=$(date +%s.%N)
    echo "file-format $1, fsync $2: shutdown with final checkpoint $(python3 -c "print(round($t1 - $t0, 2))") s," \
         "checkpoint directory $(du -sm "$WORK/ckpt" | cut -f1) MB"
done
grep -E "checkpoint: .* hosts written" "$WORK/server.log" | tail -1 | sed 's/^/final snapshot: /'
t0=$(date +%s.%N); start; t1=$(date +%s.%N)
echo "restart (restore + listen) of the wal run: $(python3 -c "print(round($t1 - $t0, 2))") s"
grep -E "restore: " "$WORK/server.log" | tail -1
curl -s "http://127.0.0.1:$PORT/api/status"; echo
stop
