#!/usr/bin/env bash
# Installs the independent Parquet reader the tests use (DuckDB from the npm
# registry, pinned in tests/tools/duckdb/package-lock.json), and node/npm
# from Debian if they are missing. Idempotent and quiet when all is there.
# Usage: scripts/install-test-tools.sh
set -euo pipefail

dir="$(cd "$(dirname "$0")/.." && pwd)/tests/tools/duckdb"

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  "$(dirname "$0")/install-deps.sh" "${missing[@]}"
fi

# Complete = the pinned version is installed and its native binding loads.
installed_ok() {
  (cd "$dir" && node --input-type=module -e '
    import { readFileSync } from "node:fs";
    const want = JSON.parse(readFileSync("package.json", "utf8")).dependencies["@duckdb/node-api"];
    const have = JSON.parse(readFileSync("node_modules/@duckdb/node-api/package.json", "utf8")).version;
    if (want !== have) process.exit(1);
    const { DuckDBInstance } = await import("@duckdb/node-api");
    (await DuckDBInstance.create(":memory:")).closeSync();
  ') >/dev/null 2>&1
}

installed_ok && exit 0

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-test-tools: npm ci failed in $dir" >&2
  exit 1
fi
if ! installed_ok; then
  echo "install-test-tools: @duckdb/node-api installed but does not load" >&2
  exit 1
fi
