#!/usr/bin/env bash
# JetStream catch-up benchmark: how fast a store that was down ingests the
# backlog its durable consumer finds in the stream.
#
# A `nats-server -js` (Debian package nats-server) on a free loopback port
# gets a stream BENCH on subject bench.metrics, filled by nats_bench
# --fill-only with the default workload (bench/README.md) published as one
# message per host and timestep (--block-minutes 1: ~20 KB, 270 lines).
# Then, per run, a fresh store (empty checkpoint directory, fsync "none",
# the repository's config.json otherwise) starts with a subscription
# {"jetstream": {"stream": "BENCH", "durable": "bench-<run>"}}: its new
# consumer delivers the whole stream, which is what a store sees after a
# downtime as long as the backlog. nats_bench --catch-up times it from the
# store's first /api/status answer until every sample is accepted.
#
# Usage: bench/jetstream_catchup.sh [--hosts H] [--hours N] [--runs R] [--server BIN]
#                                   [--perf FILE]
# (run from the repo root). Prints one RESULT line per run. --perf records
# the store's first catch-up with `perf record -g` into FILE.
set -euo pipefail
HOSTS=256; HOURS=4; RUNS=3; SERVER=./cc-metric-store; PERF=
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts) HOSTS=$2; shift 2 ;;
        --hours) HOURS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --server) SERVER=$2; shift 2 ;;
        --perf) PERF=$2; shift 2 ;;
        *) echo "usage: $0 [--hosts H] [--hours N] [--runs R] [--server BIN] [--perf FILE]"
           exit 2 ;;
    esac
done
[ "$SERVER" = ./cc-metric-store ] && make -s cc-metric-store
make -s -C bench nats_bench
NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
NPORT=$(free_port); PORT=$(free_port)
WORK=$(mktemp -d)
PID=; NPID=
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; [ -n "$NPID" ] && kill $NPID 2>/dev/null;
      wait 2>/dev/null; rm -rf "$WORK"' EXIT

"$NATS_SERVER" -a 127.0.0.1 -p "$NPORT" -js -sd "$WORK/js" 2>"$WORK/nats.log" &
NPID=$!
for _ in $(seq 500); do
    (exec 3<>"/dev/tcp/127.0.0.1/$NPORT") 2>/dev/null && break
    sleep 0.01
done
START=$(( ($(date +%s) - HOURS * 3600) / 60 * 60 ))
bench/nats_bench --nats "nats://127.0.0.1:$NPORT" --subject bench.metrics --stream BENCH \
    --fill-only --hosts "$HOSTS" --hours "$HOURS" --start "$START"

config() { # durable
    python3 - "$WORK" "$PORT" "$NPORT" "$1" <<'PY'
import json, os, sys
work, port, nport, durable = sys.argv[1:]
c = json.load(open("config.json"))
c["main"]["addr"] = "127.0.0.1:" + port
c["nats"] = {"address": "nats://127.0.0.1:" + nport}
ms = c["metric-store"]
ms["memory-cap"] = 0
if os.environ.get("WORKERS"):           # decoder threads; default: the store's
    ms["num-workers"] = int(os.environ["WORKERS"])
ms["checkpoints"] = {"directory": work + "/ckpt", "fsync": "none"}
ms["nats-subscriptions"] = [{"subscribe-to": "bench.metrics", "cluster-tag": "bench",
                             "jetstream": {"stream": "BENCH", "durable": durable}}]
json.dump(c, open(work + "/cfg.json", "w"))
PY
}

for run in $(seq "$RUNS"); do
    rm -rf "$WORK/ckpt"
    config "bench-$run"
    "$SERVER" -config "$WORK/cfg.json" 2>>"$WORK/server.log" &
    PID=$!
    PERF_PID=
    if [ -n "$PERF" ] && [ "$run" = 1 ]; then
        perf record -g -o "$PERF" -p "$PID" 2>/dev/null &
        PERF_PID=$!
    elif [ -n "${PERF_STAT:-}" ]; then
        perf stat -e context-switches,cpu-migrations,task-clock -p "$PID" 2>"$WORK/perfstat" &
        PERF_PID=$!
    fi
    bench/nats_bench --addr "127.0.0.1:$PORT" --catch-up --stream BENCH \
        --hosts "$HOSTS" --hours "$HOURS" --pid "$PID"
    if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" || true; fi
    [ -n "${PERF_STAT:-}" ] && grep -E "context|migr|task-clock" "$WORK/perfstat"
    kill -TERM "$PID"; wait "$PID" || true; PID=
done
