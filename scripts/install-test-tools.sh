#!/usr/bin/env bash
# Installs the npm packages the project pins (each directory has its
# package.json and package-lock.json), and node/npm from Debian if they are
# missing. Idempotent and quiet when all is there.
#   tests/tools/duckdb   DuckDB: the independent Parquet reader of the tests
#   tests/tools/browser  puppeteer-core: drives Debian's chromium in the
#                        Swagger UI test (no browser download)
#   web/swagger-ui       swagger-ui-dist: the assets `cc-metric-store -dev`
#                        serves at /swagger/
# Usage: scripts/install-test-tools.sh [DIR...]   (default: all three)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  "$(dirname "$0")/install-deps.sh" "${missing[@]}"
fi

# Whether every pinned dependency of dir is installed in that version.
pinned_installed() {
  (cd "$1" && node --input-type=module -e '
    import { readFileSync } from "node:fs";
    const deps = JSON.parse(readFileSync("package.json", "utf8")).dependencies;
    for (const [name, want] of Object.entries(deps)) {
      const have = JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8")).version;
      if (want !== have) process.exit(1);
    }
  ') >/dev/null 2>&1
}

# DuckDB also needs its native binding to load.
duckdb_loads() {
  (cd "$root/tests/tools/duckdb" && node --input-type=module -e '
    const { DuckDBInstance } = await import("@duckdb/node-api");
    (await DuckDBInstance.create(":memory:")).closeSync();
  ') >/dev/null 2>&1
}

dirs=(tests/tools/duckdb tests/tools/browser web/swagger-ui)
[ $# -gt 0 ] && dirs=("$@")
for dir in "${dirs[@]}"; do
  d="$root/$dir"
  ok=1
  pinned_installed "$d" || ok=0
  [ "$dir" = tests/tools/duckdb ] && { duckdb_loads || ok=0; }
  [ "$ok" -eq 1 ] && continue
  log="$(mktemp)"
  if ! (cd "$d" && npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "install-test-tools: npm ci failed in $dir" >&2
    exit 1
  fi
  rm -f "$log"
  if ! pinned_installed "$d" || { [ "$dir" = tests/tools/duckdb ] && ! duckdb_loads; }; then
    echo "install-test-tools: the packages of $dir are installed but do not load" >&2
    exit 1
  fi
done
