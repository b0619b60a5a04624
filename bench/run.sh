#!/usr/bin/env bash
# End-to-end benchmark of cc-metric-store: build, then RUNS times: start a
# fresh server on a free loopback port with a temporary config and checkpoint
# directory, ingest the workload over HTTP, measure memory, run the query
# benchmark, stop the server. Prints the median of every figure over the runs.
#
# Usage: bench/run.sh [options]      (see --help; every option also has an
#                                     environment variable of the same name)
# Needs: gcc, make, python3 (config and medians), curl (readiness probe).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

RUNS=${RUNS:-3}
HOSTS=${HOSTS:-256}
HOURS=${HOURS:-24}
CONNECTIONS=${CONNECTIONS:-4}
ITERATIONS=${ITERATIONS:-1000}
ORDER=${ORDER:-forward}        # ingest request order: forward, reverse (newest first), shuffled
VALUES=${VALUES:-walk}         # value profile: walk (gauges) or noise (float32 noise)
WARMUP=${WARMUP:-100}
CONFIG_SRC=${CONFIG_SRC:-$ROOT/config.json}
SERVER=${SERVER:-$ROOT/cc-metric-store}
OUT=${OUT:-}
PERF=${PERF:-}                 # ingest | query | both: perf-record the server in that phase of run 1
PERF_ARGS=${PERF_ARGS:--F 999}   # flat profile; add --call-graph dwarf for callers
INGEST_TIMEOUT=${INGEST_TIMEOUT:-1800}
QUERY_TIMEOUT=${QUERY_TIMEOUT:-1800}
BUILD=${BUILD:-1}
QUIET_WAIT=${QUIET_WAIT:-300}  # seconds to wait for a quiet machine before each run (0 = never)
QUIET_BELOW=${QUIET_BELOW:-0.25}  # ... i.e. until fewer cores than this are busy

usage() {
    cat <<EOF
usage: bench/run.sh [--runs R] [--hosts H] [--hours N] [--connections C] [--order O] [--values V]
                    [--iterations K] [--warmup W] [--out DIR] [--perf ingest|query|both]
                    [--config-src FILE] [--server BINARY] [--no-build]
                    [--quiet-wait SECONDS]
defaults: R=$RUNS H=$HOSTS N=$HOURS C=$CONNECTIONS O=$ORDER V=$VALUES K=$ITERATIONS W=$WARMUP,
          metrics from $CONFIG_SRC, results in a new /tmp/ccms-bench.* directory
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --runs) RUNS=$2; shift 2 ;;
        --hosts) HOSTS=$2; shift 2 ;;
        --hours) HOURS=$2; shift 2 ;;
        --connections) CONNECTIONS=$2; shift 2 ;;
        --order) ORDER=$2; shift 2 ;;
        --values) VALUES=$2; shift 2 ;;
        --iterations) ITERATIONS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --perf) PERF=$2; shift 2 ;;
        --config-src) CONFIG_SRC=$2; shift 2 ;;
        --server) SERVER=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --quiet-wait) QUIET_WAIT=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

case "$PERF" in ""|ingest|query|both) ;; *) echo "run.sh: --perf must be ingest, query or both" >&2; exit 2 ;; esac
[ -f "$CONFIG_SRC" ] || { echo "run.sh: no metric configuration at $CONFIG_SRC" >&2; exit 1; }

if [ "$BUILD" = 1 ]; then
    make -s -C "$ROOT" -j2 cc-metric-store
    make -s -C "$HERE"
fi
[ -x "$SERVER" ] || { echo "run.sh: server binary $SERVER missing" >&2; exit 1; }

[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/ccms-bench.XXXXXX)
mkdir -p "$OUT"
RESULTS=$OUT/results.txt
: >"$RESULTS"

SERVER_PID=
PERF_PID=
WORK=
cleanup() {
    if [ -n "$PERF_PID" ] && kill -0 "$PERF_PID" 2>/dev/null; then
        kill -INT "$PERF_PID" 2>/dev/null || true
        wait "$PERF_PID" 2>/dev/null || true
    fi
    PERF_PID=
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 600); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
    if [ -n "$WORK" ]; then
        rm -rf "$WORK"
        WORK=
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The repository's metric definitions; everything else minimal, loopback only.
# file-format and checkpoint-interval stay at their defaults on purpose.
write_config() {
    python3 - "$CONFIG_SRC" "$1" "$2" "$3" <<'EOF'
import json, sys
src, dest, port, work = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
metrics = json.load(open(src))["metrics"]
cfg = {
    "main": {"addr": "127.0.0.1:" + port},
    "metrics": metrics,
    "metric-store": {
        "checkpoints": {"directory": work + "/checkpoints"},
        "retention-in-memory": "48h",
        "memory-cap": 0,
        "cleanup": {"mode": "delete"},
    },
}
json.dump(cfg, open(dest, "w"), indent=2)
EOF
}

status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# What the server itself says it holds: "<bytes> <samples> <buffers>" from
# GET /api/status (store.bytes is the store's exact allocation count), or,
# from a server without that endpoint, "- <samples> <buffers>" counted in
# the debug dump (docs/http-api.md, "Debug").
store_counts() {
    local st
    st=$(curl -s --max-time 60 -w '\n%{http_code}' "http://127.0.0.1:$1/api/status" || true)
    if [ "${st##*$'\n'}" = 200 ]; then
        printf '%s\n' "${st%$'\n'*}" | python3 -c '
import json, sys
s = json.load(sys.stdin)["store"]
print(s["bytes"], s["samples"], s["buffers"])'
    else
        curl -s --max-time 120 "http://127.0.0.1:$1/api/debug" | python3 -c '
import re, sys
lens = re.findall(r"\"len\":(\d+)", sys.stdin.read())
print("-", sum(int(x) for x in lens), len(lens))'
    fi
}

# CPU cores busy machine-wide, averaged over $1 seconds (from /proc/stat).
busy_cores() {
    local a b
    a=$(awk '/^cpu / { print $2+$3+$4+$7+$8+$9 }' /proc/stat)
    sleep "$1"
    b=$(awk '/^cpu / { print $2+$3+$4+$7+$8+$9 }' /proc/stat)
    awk -v a="$a" -v b="$b" -v s="$1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz / s }'
}

# On a shared machine, wait (at most QUIET_WAIT seconds) until other work
# leaves the CPUs nearly idle, so runs measure the server and not neighbours.
wait_for_quiet() {
    local waited=0 busy
    while :; do
        busy=$(busy_cores 3)
        if awk -v b="$busy" -v t="$QUIET_BELOW" 'BEGIN { exit !(b < t) }'; then
            [ "$waited" = 0 ] || echo "   (waited ${waited}s for other work to finish; now $busy cores busy)"
            return 0
        fi
        if [ "$waited" -ge "$QUIET_WAIT" ]; then
            echo "   (machine still busy: $busy cores used by other processes; measuring anyway)"
            return 0
        fi
        sleep 7
        waited=$((waited + 10))
    done
}

echo "== cc-metric-store benchmark: $RUNS runs, $HOSTS hosts x $HOURS h, $CONNECTIONS connections, $ITERATIONS query iterations"
echo "== results and logs in $OUT"
for run in $(seq 1 "$RUNS"); do
    [ "$QUIET_WAIT" = 0 ] || wait_for_quiet
    WORK=$(mktemp -d /tmp/ccms-bench-work.XXXXXX)
    PORT=$(free_port)
    write_config "$WORK/config.json" "$PORT" "$WORK"
    (cd "$WORK" && exec "$SERVER" -config "$WORK/config.json" -loglevel warn) >"$OUT/server-$run.log" 2>&1 &
    SERVER_PID=$!
    ready=0
    for _ in $(seq 1 300); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X POST --data-binary '' \
                    "http://127.0.0.1:$PORT/api/write?cluster=bench" || true)
        if [ "$code" = 200 ]; then ready=1; break; fi
        sleep 0.1
    done
    if [ "$ready" != 1 ]; then
        echo "run.sh: server did not come up; log:" >&2
        tail -20 "$OUT/server-$run.log" >&2
        exit 1
    fi
    base_kb=$(status_kb "$SERVER_PID" VmRSS)
    START=$(( $(date +%s) / 60 * 60 - HOURS * 3600 ))
    COMMON=(--addr "127.0.0.1:$PORT" --hosts "$HOSTS" --hours "$HOURS" --start "$START")

    if { [ "$PERF" = ingest ] || [ "$PERF" = both ]; } && [ "$run" = 1 ]; then
        # shellcheck disable=SC2086
        perf record $PERF_ARGS -p "$SERVER_PID" -o "$OUT/perf-ingest.data" >"$OUT/perf-ingest.log" 2>&1 &
        PERF_PID=$!
        sleep 1
    fi
    echo "-- run $run: ingest (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
    timeout "$INGEST_TIMEOUT" "$HERE/ingest_bench" "${COMMON[@]}" --connections "$CONNECTIONS" \
        --order "$ORDER" --values "$VALUES" --pid "$SERVER_PID" --quiet | tee "$OUT/ingest-$run.txt"
    if [ -n "$PERF_PID" ]; then
        kill -INT "$PERF_PID"; wait "$PERF_PID" || true; PERF_PID=
    fi

    sleep 2   # let background writers (WAL) settle before reading memory
    rss_kb=$(status_kb "$SERVER_PID" VmRSS)
    hwm_kb=$(status_kb "$SERVER_PID" VmHWM)
    samples=$(awk '/^RESULT ingest/ { for (i = 3; i <= NF; i++) if ($i ~ /^samples=/) { sub("samples=", "", $i); print $i } }' "$OUT/ingest-$run.txt")
    read -r store_bytes held_samples held_buffers < <(store_counts "$PORT" || echo "- 0 0")
    disk_bytes=$(du -sb "$WORK/checkpoints" 2>/dev/null | cut -f1)
    python3 - "$rss_kb" "$base_kb" "$hwm_kb" "$samples" "$held_buffers" "$held_samples" "${disk_bytes:-0}" "$store_bytes" <<'EOF' | tee -a "$OUT/ingest-$run.txt"
import sys
rss, base, hwm, samples, buffers, held, disk = (int(x) for x in sys.argv[1:8])
sb = sys.argv[8]
line = (f"RESULT memory rss_mb={rss/1024:.1f} baseline_rss_mb={base/1024:.1f} hwm_mb={hwm/1024:.1f} "
        f"samples={samples} rss_bytes_per_sample={rss*1024/samples:.3f} "
        f"rss_growth_bytes_per_sample={(rss-base)*1024/samples:.3f} "
        f"held_buffers={buffers} held_samples={held} "
        f"slot_bytes_per_sample={buffers*512*4/samples:.3f} ")
if sb != "-":
    line += f"store_mb={int(sb)/2**20:.1f} store_bytes_per_sample={int(sb)/samples:.3f} "
line += f"checkpoint_dir_mb={disk/1e6:.1f} checkpoint_dir_bytes_per_sample={disk/samples:.2f}"
print(line)
if held != samples:
    print(f"WARNING: the server holds {held} samples, {samples} were acknowledged", file=sys.stderr)
if sb == "-":
    print("note: no /api/status on this server: no byte count of its own, RSS only")
EOF

    if { [ "$PERF" = query ] || [ "$PERF" = both ]; } && [ "$run" = 1 ]; then
        # shellcheck disable=SC2086
        perf record $PERF_ARGS -p "$SERVER_PID" -o "$OUT/perf-query.data" >"$OUT/perf-query.log" 2>&1 &
        PERF_PID=$!
        sleep 1
    fi
    echo "-- run $run: queries"
    timeout "$QUERY_TIMEOUT" "$HERE/query_bench" "${COMMON[@]}" --iterations "$ITERATIONS" \
        --warmup "$WARMUP" --pid "$SERVER_PID" | tee "$OUT/query-$run.txt"
    if [ -n "$PERF_PID" ]; then
        kill -INT "$PERF_PID"; wait "$PERF_PID" || true; PERF_PID=
    fi

    grep -h '^RESULT' "$OUT/ingest-$run.txt" "$OUT/query-$run.txt" | sed "s/^RESULT /run=$run /" >>"$RESULTS"
    cleanup
done

echo "== medians over $RUNS runs"
python3 - "$RESULTS" <<'EOF'
import statistics, sys
vals = {}
order = []
for line in open(sys.argv[1]):
    parts = line.split()
    group = parts[1]
    for kv in parts[2:]:
        k, _, v = kv.partition("=")
        try:
            x = float(v)
        except ValueError:
            continue
        key = (group, k)
        if key not in vals:
            vals[key] = []
            order.append(key)
        vals[key].append(x)
for key in order:
    xs = vals[key]
    if key[1] in ("start", "end"):
        continue
    print(f"{key[0]:<22} {key[1]:<30} median {statistics.median(xs):>14.3f}   runs {' '.join(f'{x:g}' for x in xs)}")
EOF
