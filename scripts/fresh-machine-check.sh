#!/usr/bin/env bash
# fresh-machine-check — proves that `make test`, `make run` and `make deb` work
# as the very first commands on a fresh Debian 12 machine, the way a newcomer
# meets them, and that the package installs and runs there.
#
# It builds (once, then reuses a cached tarball) a minimal Debian 12 root with
# debootstrap holding only what a new machine has: gcc, make, git, python3,
# node/npm, sudo and ca-certificates, none of the project's -dev packages.
# Then, each in its own fresh copy of that root:
#
#   test  a clean `git clone` of the current commit, `make test` as root as
#         the first command; prints the run's closing "N passed, M failed".
#   run   the same clone, `make run` as the first command by a normal user
#         who has sudo; waits until /api/healthcheck answers, then stops the
#         server with SIGTERM.
#   deb   `make deb` in one root; the package installed with apt into another
#         fresh root, its binary started as the package's user on the
#         installed config with -dev (answers, stores a sample, serves the
#         Swagger UI from the package, stops with a snapshot in
#         /var/lib/cc-metric-store), and `systemd-analyze verify` on its unit.
#
# The roots share the host's network: the host's extra CA certificates
# (/usr/local/share/ca-certificates), resolv.conf and npm configuration are
# copied in so the package registries are reached as from the host.
#
# Usage: scripts/fresh-machine-check.sh [--only test|run|deb|base] [--keep]
#   --only   run one of the checks (default all): "test" (make test),
#            "run" (make run), "deb" (make deb, then the package installed
#            into another fresh root and started); "base" just builds
#            the cached base root
#   --keep   leave the roots in $FRESH_DIR for inspection
# Environment: FRESH_DIR (default /var/tmp/ccms-fresh) holds the cached base
#   and the roots; FRESH_MIRROR overrides the Debian mirror.
# Needs root (debootstrap, chroot, mounts). Exits non-zero if a check fails.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${FRESH_DIR:-/var/tmp/ccms-fresh}"
base_tar="$work/bookworm-base.tar"
mirror="${FRESH_MIRROR:-http://deb.debian.org/debian}"
base_packages="ca-certificates,gcc,libc6-dev,make,git,python3,nodejs,npm,sudo,procps"
only=""
keep=0

while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: $0 [--only test|run|deb|base] [--keep]" >&2; exit 2 ;;
  esac
done
case "$only" in ""|test|run|deb|base) ;; *) echo "--only takes test, run, deb or base" >&2; exit 2 ;; esac

say() { echo "fresh-machine-check: $*"; }
die() { echo "fresh-machine-check: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and mounts)"
if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
    || die "could not install debootstrap"
fi
mkdir -p "$work"

# ---- the cached base root -----------------------------------------------------
# debootstrap lays a minimal system; the tools a new machine has come from
# apt inside it (debootstrap's own --include cannot order npm's many deps).
if [ ! -s "$base_tar" ]; then
  say "building the Debian 12 base with debootstrap (first run only, takes minutes)"
  tmp="$work/base.building"
  rm -rf "$tmp"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$tmp" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  cp /etc/resolv.conf "$tmp/etc/resolv.conf"
  if [ -d /usr/local/share/ca-certificates ]; then
    cp -r /usr/local/share/ca-certificates/. "$tmp/usr/local/share/ca-certificates/"
    chroot "$tmp" /usr/sbin/update-ca-certificates >/dev/null 2>&1
  fi
  mount -t proc proc "$tmp/proc"
  rc=0
  chroot "$tmp" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    bash -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends ${base_packages//,/ } && apt-get clean" \
    >>"$work/debootstrap.log" 2>&1 || rc=$?
  umount -l "$tmp/proc"
  [ "$rc" -eq 0 ] || { tail -20 "$work/debootstrap.log" >&2; die "installing the base tools failed"; }
  # A fresh machine has none of the host's CA additions: make_root adds them.
  rm -f "$tmp"/usr/local/share/ca-certificates/* "$tmp/etc/resolv.conf"
  chroot "$tmp" /usr/sbin/update-ca-certificates --fresh >/dev/null 2>&1 || true
  tar -C "$tmp" -cf "$base_tar.tmp" . && mv "$base_tar.tmp" "$base_tar"
  rm -rf "$tmp"
fi

[ "$only" = base ] && { say "base ready: $base_tar"; exit 0; }

# The commit under test: a clean clone, so uncommitted files are not seen.
commit="$(git -C "$repo" rev-parse HEAD)"
if [ -n "$(git -C "$repo" status --porcelain)" ]; then
  say "note: the working tree has uncommitted changes; checking commit ${commit:0:12} only"
fi

mounted=()
cleanup() {
  local i
  for ((i=${#mounted[@]}-1; i>=0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
  mounted=()
  if [ "$keep" -eq 0 ]; then
    rm -rf "$work/root-test" "$work/root-run" "$work/root-debbuild" "$work/root-debinstall"
  fi
}
trap cleanup EXIT

# make_root NAME: sets $root to a fresh copy of the base with the host's
# network settings and the clone at /home/newcomer/cc-metric-store. (Not
# called in $(...): the mounts it records must reach the cleanup.)
make_root() {
  root="$work/root-$1"
  rm -rf "$root"
  mkdir -p "$root"
  tar -C "$root" -xf "$base_tar"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  if [ -d /usr/local/share/ca-certificates ]; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
  fi
  for f in /root/.npmrc /etc/npmrc /usr/etc/npmrc; do
    if [ -f "$f" ]; then mkdir -p "$root$(dirname "$f")"; cp "$f" "$root$f"; fi
  done
  # A chroot has no init: packages (prometheus) must not start their
  # services in it, as on any build chroot.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  chroot "$root" /usr/sbin/update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in $root"
  chroot "$root" /usr/sbin/useradd -m -s /bin/bash newcomer
  echo "newcomer ALL=(ALL) NOPASSWD: ALL" >"$root/etc/sudoers.d/newcomer"
  chmod 0440 "$root/etc/sudoers.d/newcomer"
  # The npm configuration a user would have, for the normal user too.
  [ -f /root/.npmrc ] && install -o 1000 -g 1000 -m 0644 /root/.npmrc "$root/home/newcomer/.npmrc"
  git clone -q --no-local "$repo" "$root/home/newcomer/cc-metric-store"
  git -C "$root/home/newcomer/cc-metric-store" checkout -q "$commit"
  chroot "$root" chown -R newcomer:newcomer /home/newcomer
  local m
  for m in proc sys dev dev/pts dev/shm; do
    mkdir -p "$root/$m"
  done
  mount -t proc proc "$root/proc" && mounted+=("$root/proc")
  mount --rbind /sys "$root/sys" && mounted+=("$root/sys")
  mount --rbind /dev "$root/dev" && mounted+=("$root/dev")
}

# The environment a login shell on a new machine has (no variables of ours).
chroot_env=(env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
            LANG=C.UTF-8 TERM=dumb NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt)

# healthcheck_ok: whether the server on 127.0.0.1:8082 answers /api/healthcheck with 200.
healthcheck_ok() {
  python3 - <<'EOF' 2>/dev/null
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", 8082, timeout=2)
c.request("GET", "/api/healthcheck", body=b'{"cluster":"fresh","nodes":[],"metric-names":[]}')
r = c.getresponse()
sys.exit(0 if r.status == 200 else 1)
EOF
}

status=0

if [ -z "$only" ] || [ "$only" = test ]; then
  say "check 1: 'make test' as the first command (root) on commit ${commit:0:12}"
  make_root test
  log="$work/make-test.log"
  rc=0
  chroot "$root" "${chroot_env[@]}" bash -c 'cd /home/newcomer/cc-metric-store && make test' >"$log" 2>&1 || rc=$?
  tail -5 "$log"
  summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1 || true)"
  if [ "$rc" -ne 0 ] || [ -z "$summary" ]; then
    say "make test FAILED (exit $rc); full log: $log"
    status=1
  else
    say "make test: $summary"
  fi
  cleanup
fi

if [ -z "$only" ] || [ "$only" = run ]; then
  say "check 2: 'make run' as the first command (user 'newcomer' with sudo)"
  make_root run
  log="$work/make-run.log"
  # setsid: the server and make get their own process group to stop as one.
  setsid chroot "$root" "${chroot_env[@]}" HOME=/home/newcomer \
    su newcomer -c 'cd ~/cc-metric-store && make run' >"$log" 2>&1 &
  runner=$!
  answered=0
  # Installing the packages takes minutes on a new root: poll up to 20 min.
  for _ in $(seq 1 1200); do
    if ! kill -0 "$runner" 2>/dev/null; then break; fi
    if healthcheck_ok; then answered=1; break; fi
    sleep 1
  done
  if [ "$answered" -eq 1 ]; then
    say "make run: the server answered /api/healthcheck with 200"
    pkill -TERM -f "^./cc-metric-store -config config.json" || true
  else
    say "make run FAILED: no answer from /api/healthcheck; log: $log"
    status=1
    kill -TERM -- "-$runner" 2>/dev/null || true
  fi
  for _ in $(seq 1 30); do kill -0 "$runner" 2>/dev/null || break; sleep 1; done
  kill -KILL -- "-$runner" 2>/dev/null || true
  wait "$runner" 2>/dev/null || true
  tail -3 "$log"
  cleanup
fi

if [ -z "$only" ] || [ "$only" = deb ]; then
  say "check 3: 'make deb', then the .deb installed into another fresh root and started"
  make_root debbuild
  log="$work/make-deb.log"
  rc=0
  chroot "$root" "${chroot_env[@]}" bash -c 'cd /home/newcomer/cc-metric-store && make deb' \
    >"$log" 2>&1 || rc=$?
  deb="$(ls "$root"/home/newcomer/cc-metric-store/build/cc-metric-store_*.deb 2>/dev/null | head -1 || true)"
  if [ "$rc" -ne 0 ] || [ -z "$deb" ]; then
    say "make deb FAILED (exit $rc); log: $log"
    status=1
  else
    cp "$deb" "$work/"
    deb="$work/$(basename "$deb")"
    say "make deb: $(basename "$deb")"
  fi
  cleanup
  if [ "$rc" -eq 0 ] && [ -n "$deb" ]; then
    make_root debinstall
    log="$work/deb-install.log"
    cp "$deb" "$root/tmp/"
    rc=0
    # apt resolves the package's runtime dependencies from the registry
    chroot "$root" "${chroot_env[@]}" DEBIAN_FRONTEND=noninteractive bash -c \
      "apt-get update -qq && apt-get install -y -qq /tmp/$(basename "$deb")" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
      say "installing the .deb FAILED (exit $rc); log: $log"
      status=1
    else
      # the installed binary, as the package's user, on the installed config
      # (-dev: the explorer's assets come from the package too)
      setsid chroot "$root" "${chroot_env[@]}" runuser -u cc-metric-store -- \
        /usr/bin/cc-metric-store -config /etc/cc-metric-store/config.json -dev >>"$log" 2>&1 &
      runner=$!
      answered=0
      for _ in $(seq 1 60); do
        if healthcheck_ok; then answered=1; break; fi
        kill -0 "$runner" 2>/dev/null || break
        sleep 1
      done
      python3 - "$(date +%s)" <<'EOF' >>"$log" 2>&1 || answered=0
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", 8082, timeout=5)
c.request("POST", "/api/write?cluster=deb",
          body=b"cpu_load,hostname=n1,type=node value=1.5 %s\n" % sys.argv[1].encode())
if c.getresponse().status != 200:
    sys.exit(1)
c = http.client.HTTPConnection("127.0.0.1", 8082, timeout=5)
c.request("GET", "/swagger/swagger-ui-bundle.js")
sys.exit(0 if c.getresponse().status == 200 else 1)
EOF
      # SIGTERM to the store alone: its exit status comes back through
      # runuser, chroot and setsid
      pkill -TERM -f "^/usr/bin/cc-metric-store -config /etc/cc-metric-store/config.json" || true
      stopped=1
      wait "$runner" || stopped=0
      snapshot="$(ls "$root"/var/lib/cc-metric-store/checkpoints/deb/n1/*.ccms 2>/dev/null | head -1 || true)"
      owner="$(chroot "$root" stat -c %U /var/lib/cc-metric-store 2>/dev/null || true)"
      if [ "$answered" -eq 1 ] && [ "$stopped" -eq 1 ] && [ -n "$snapshot" ] && \
         [ "$owner" = cc-metric-store ] && grep -q "Graceful shutdown completed!" "$log"; then
        say "deb: installed, started as cc-metric-store on /etc/cc-metric-store/config.json," \
            "answered (API and -dev explorer), stopped cleanly with its snapshot in" \
            "/var/lib/cc-metric-store"
      else
        say "deb FAILED: answered=$answered stopped=$stopped snapshot='${snapshot##*/}'" \
            "owner='$owner'; log: $log"
        status=1
      fi
      # the unit, where systemd and man are installed
      rc=0
      chroot "$root" "${chroot_env[@]}" DEBIAN_FRONTEND=noninteractive bash -c \
        "apt-get install -y -qq --no-install-recommends systemd man-db >/dev/null &&
         systemd-analyze verify /lib/systemd/system/cc-metric-store.service" >>"$log" 2>&1 || rc=$?
      if [ "$rc" -eq 0 ]; then
        say "deb: systemd-analyze verify passes on the installed unit"
      else
        say "deb FAILED: systemd-analyze verify (exit $rc); log: $log"
        status=1
      fi
    fi
    cleanup
  fi
fi

[ "$status" -eq 0 ] && say "all checks passed" || say "some checks failed"
exit "$status"
