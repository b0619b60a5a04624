#!/usr/bin/env bash
# Query latency A/B on a noisy machine: two servers (binaries A and B) are
# loaded with the same workload at the same time, then queried in turns,
# ROUNDS batches of ITERATIONS queries per shape each, so that a change in
# the machine's speed hits both alike. Prints the median p50 of the batches
# per shape and binary, and every batch's p50.
#
# Usage: bench/query_ab.sh BINARY_A BINARY_B [--hosts H] [--rounds R]
#                          [--iterations K] [--shapes LIST]
# (run from the repository root; builds bench/ first)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BINARY_A BINARY_B [--hosts H] [--rounds R] [--iterations K] [--shapes LIST]" >&2; exit 2; }
A=$1; B=$2; shift 2
HOSTS=64; ROUNDS=5; ITERATIONS=100; SHAPES=node-24h,hwthread64-agg,hwthread64-stats,job-16x10-6h
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) HOSTS=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --iterations) ITERATIONS=$2; shift 2 ;;
        --shapes) SHAPES=$2; shift 2 ;;
        *) echo "$0: unknown option $1" >&2; exit 2 ;;
    esac
done
make -s -C bench ingest_bench query_bench
WORK=$(mktemp -d /tmp/ccms-query-ab.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start NAME BINARY: a server on a free port with its own checkpoint directory
start() {
    local port dir=$WORK/$1
    port=$(free_port)
    mkdir -p "$dir"
    python3 - "$dir" "$port" <<'PY'
import json, sys
d, port = sys.argv[1:]
c = json.load(open("config.json"))
c["main"] = {"addr": "127.0.0.1:" + port}
ms = c["metric-store"]
ms["memory-cap"] = 0
ms["retention-in-memory"] = "48h"
ms["checkpoints"] = {"directory": d + "/checkpoints"}
json.dump(c, open(d + "/config.json", "w"))
PY
    "$2" -config "$dir/config.json" -loglevel warn 2>"$dir/server.log" &
    PIDS+=($!)
    disown     # killed at the end: no job-control message
    echo "$port" >"$dir/port"
    echo $! >"$dir/pid"
    for _ in $(seq 200); do
        curl -s -o /dev/null "http://127.0.0.1:$port/api/healthcheck" && return 0
        sleep 0.05
    done
    echo "$0: server $2 did not start" >&2
    exit 1
}

start A "$A"
start B "$B"
START=$(( $(date +%s) / 60 * 60 - 24 * 3600 ))
for s in A B; do
    bench/ingest_bench --addr "127.0.0.1:$(cat "$WORK/$s/port")" --hosts "$HOSTS" --hours 24 \
        --start "$START" --quiet >/dev/null
done
sleep 80    # past the background snapshot and compaction that follow the ingest
for _ in $(seq "$ROUNDS"); do
    for s in A B; do
        bench/query_bench --addr "127.0.0.1:$(cat "$WORK/$s/port")" --hosts "$HOSTS" --hours 24 \
            --start "$START" --iterations "$ITERATIONS" --warmup 20 --shapes "$SHAPES" |
            grep -oE 'query_[a-z0-9-]+ p50_us=[0-9.]+' | sed "s/^/$s /"
    done
done >"$WORK/batches"
python3 - "$WORK/batches" "$A" "$B" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    who, shape, p50 = line.split()
    runs[(shape[len("query_"):], who)].append(float(p50.split("=")[1]))
print("A = %s, B = %s" % (sys.argv[2], sys.argv[3]))
for (shape, who), v in sorted(runs.items()):
    print("%-18s %s p50 median %9.1f us   batches %s" % (shape, who, statistics.median(v),
          " ".join("%.0f" % x for x in v)))
PY
