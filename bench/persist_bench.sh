#!/usr/bin/env bash
# Persistence benchmark: the default workload (bench/README.md) ingested into
# a fresh store with persistence in each mode, then
#   - disk right after the ingest (the log only),
#   - the final snapshot at SIGTERM (time, directory size after it),
#   - the restart on that directory (restore time, from the server's log),
# per sample. Modes (--modes, comma-separated):
#   native        the native log and snapshots (the default), fsync "none"
#   native-always the same with fsync "always"
#   go            checkpoints.write-go-formats (Go .bin + current.wal), fsync "none"
#   json          file-format "json" (no log: upstream's crash-unsafe mode)
#
# Usage: bench/persist_bench.sh [--hosts H] [--hours N] [--values walk|noise]
#                               [--modes native,go,...] [--server BIN]
# (run from the repo root). Prints one RESULT line per mode.
set -euo pipefail
HOSTS=256; HOURS=24; VALUES=walk; MODES=native,native-always,go,json; SERVER=./cc-metric-store
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) HOSTS=$2; shift 2 ;;
        --hours) HOURS=$2; shift 2 ;;
        --values) VALUES=$2; shift 2 ;;
        --modes) MODES=$2; shift 2 ;;
        --server) SERVER=$2; shift 2 ;;
        *) echo "usage: $0 [--hosts H] [--hours N] [--values walk|noise] [--modes LIST] [--server BIN]"
           exit 2 ;;
    esac
done
[ "$SERVER" = ./cc-metric-store ] && make -s cc-metric-store
make -s -C bench ingest_bench
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
WORK=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; rm -rf "$WORK"' EXIT

config() { # mode
    python3 - "$WORK" "$PORT" "$1" <<'PY'
import json, sys
work, port, mode = sys.argv[1:]
c = json.load(open("config.json"))
c["main"]["addr"] = "127.0.0.1:" + port
ms = c["metric-store"]
ms["memory-cap"] = 0
ck = {"directory": work + "/ckpt", "fsync": "always" if mode == "native-always" else "none"}
if mode == "go":
    ck["write-go-formats"] = True
if mode == "json":
    ck["file-format"] = "json"
ms["checkpoints"] = ck
json.dump(c, open(work + "/cfg.json", "w"))
PY
}

start() {
    "$SERVER" -config "$WORK/cfg.json" -loglevel info 2>>"$WORK/server.log" &
    PID=$!
    for _ in $(seq 2000); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/api/healthcheck" && return 0
        sleep 0.005
    done
    echo "server did not start"; exit 1
}

stop() {
    kill -TERM "$PID"; wait "$PID" || true; PID=
}

disk_bytes() {
    du -sb "$WORK/ckpt" | cut -f1
}

IFS=, read -ra LIST <<< "$MODES"
for mode in "${LIST[@]}"; do
    rm -rf "$WORK/ckpt"; : > "$WORK/server.log"
    config "$mode"
    start
    out=$(bench/ingest_bench --addr "127.0.0.1:$PORT" --hosts "$HOSTS" --hours "$HOURS" \
          --pid "$PID" --values "$VALUES")
    res=$(echo "$out" | grep '^RESULT' | head -1)
    samples=$(echo "$res" | sed -n 's/.*samples=\([0-9]*\).*/\1/p')
    rate=$(echo "$res" | sed -n 's/.* rate=\([0-9.]*\).*/\1/p')
    cpu=$(echo "$res" | sed -n 's/.*server_ns_per_sample=\([0-9.]*\).*/\1/p')
    after_ingest=$(disk_bytes)
    t0=$(date +%s.%N); stop; t1=$(date +%s.%N)
    after_snapshot=$(disk_bytes)
    snap=$(grep -E "checkpoint: .* hosts written" "$WORK/server.log" | tail -1 |
           sed -n 's/.*, \([0-9.]*\) s$/\1/p')
    t2=$(date +%s.%N); start; t3=$(date +%s.%N)
    restore=$(grep -E "restore: .* files loaded" "$WORK/server.log" | tail -1 |
              sed -n 's/.*; \([0-9.]*\) s$/\1/p')
    stop
    python3 - "$mode" "$VALUES" "$samples" "$rate" "$cpu" "$after_ingest" "$after_snapshot" \
        "$snap" "$(python3 -c "print($t1 - $t0)")" "$restore" "$(python3 -c "print($t3 - $t2)")" <<'PY'
import sys
mode, values, n, rate, cpu, ai, asn, snap, shut, rest, start = sys.argv[1:]
n = int(n)
print("RESULT mode=%s values=%s samples=%d ingest_msamples_per_s=%.2f server_cpu_us_per_sample=%.3f "
      "disk_after_ingest_b_per_sample=%.2f disk_after_snapshot_b_per_sample=%.2f "
      "final_snapshot_s=%s shutdown_s=%.2f restore_s=%s restart_s=%.2f"
      % (mode, values, n, float(rate) / 1e6, float(cpu) / 1e3, int(ai) / n, int(asn) / n, snap or "?",
         float(shut), rest or "?", float(start)))
PY
done
