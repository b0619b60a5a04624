#!/usr/bin/env bash
# Ingest of two binaries on a noisy machine: ROUNDS times, bench/run.sh with
# one binary, then with the other (a fresh server each, the default
# workload over HOURS hours, queries cut to one iteration), so that a slow
# spell of the machine hits both alike. Prints each run's server CPU per
# sample and rate, then the medians per binary.
#
# Usage: bench/ingest_ab.sh [--rounds R] [--hours N] BINARY_A BINARY_B
# Needs: what bench/run.sh needs; both binaries built (run.sh --no-build).
set -euo pipefail

ROUNDS=3
HOURS=24
while [ $# -gt 2 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --hours) HOURS=$2; shift 2 ;;
        *) echo "usage: bench/ingest_ab.sh [--rounds R] [--hours N] BINARY_A BINARY_B" >&2; exit 2 ;;
    esac
done
[ $# -eq 2 ] || { echo "usage: bench/ingest_ab.sh [--rounds R] [--hours N] BINARY_A BINARY_B" >&2; exit 2; }
A=$(realpath "$1")
B=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

for round in $(seq "$ROUNDS"); do
    for bin in "$A" "$B"; do
        "$HERE/run.sh" --runs 1 --hours "$HOURS" --iterations 1 --no-build --server "$bin" \
            --out "$WORK/run" >/dev/null 2>&1
        line=$(grep -h 'ingest samples' "$WORK/run/results.txt")
        ns=$(sed -n 's/.*server_ns_per_sample=\([0-9.]*\).*/\1/p' <<<"$line")
        rate=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' <<<"$line")
        [ "$bin" = "$A" ] && name=A || name=B
        echo "$name $ns $rate" | tee -a "$WORK/all.txt"
    done
done
python3 - "$WORK/all.txt" "$A" "$B" <<'EOF'
import statistics, sys
runs = {"A": [], "B": []}
for ln in open(sys.argv[1]):
    name, ns, rate = ln.split()
    runs[name].append((float(ns), int(rate)))
for name, path in (("A", sys.argv[2]), ("B", sys.argv[3])):
    ns = [r[0] for r in runs[name]]
    rate = [r[1] for r in runs[name]]
    print("%s %s: server CPU %.1f ns a sample (median of %s), %.2f M samples/s"
          % (name, path, statistics.median(ns), ", ".join("%.1f" % x for x in ns),
             statistics.median(rate) / 1e6))
EOF
