#!/usr/bin/env bash
# Builds build/cc-metric-store_<version>_<arch>.deb from the binary `make`
# built (run through `make deb`). Debian's own tools only: `make install`
# into a staging root, dpkg-shlibdeps for the runtime library dependencies,
# dpkg-deb --root-owner-group for the archive. See docs/packaging.md.
#
# The package: /usr/bin/cc-metric-store, cc-metric-store(8), the systemd
# unit (enabled, started where systemd runs), /etc/cc-metric-store/config.json
# as a conffile, the Swagger UI assets of -dev in /usr/share/cc-metric-store,
# and the system user cc-metric-store owning
# /var/lib/cc-metric-store (created by postinst; kept on purge, like the data).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x cc-metric-store ] || { echo "build-deb: build the binary first (make deb)" >&2; exit 1; }
# safe.directory: root building in a user's checkout (git refuses otherwise)
git_() { git -c safe.directory="$PWD" "$@"; }
count=$(git_ rev-list --count HEAD 2>/dev/null || echo 0)
hash=$(git_ rev-parse --short HEAD 2>/dev/null || echo unknown)
version="1.5.4+c${count}.g${hash}"
arch=$(dpkg --print-architecture)
stage="build/deb/cc-metric-store_${version}_${arch}"
out="build/cc-metric-store_${version}_${arch}.deb"

rm -rf build/deb build/cc-metric-store_*.deb
mkdir -p "$stage"
make -s install DESTDIR="$PWD/$stage" PREFIX=/usr SYSCONFDIR=/etc \
     SYSTEMDUNITDIR=/lib/systemd/system STATEDIR=/var/lib/cc-metric-store >/dev/null
strip --strip-unneeded "$stage/usr/bin/cc-metric-store"
gzip -9n "$stage/usr/share/man/man8/cc-metric-store.8"
install -d "$stage/usr/share/doc/cc-metric-store"
gzip -9nc README.md > "$stage/usr/share/doc/cc-metric-store/README.md.gz"
# the Swagger UI of -dev (swagger-ui-dist, Apache-2.0: its license goes along)
ui=web/swagger-ui/node_modules/swagger-ui-dist
[ -f "$ui/swagger-ui-bundle.js" ] || {
    echo "build-deb: $ui missing: run scripts/install-test-tools.sh web/swagger-ui" >&2; exit 1; }
install -d "$stage/usr/share/cc-metric-store/swagger-ui"
install -m 0644 "$ui/swagger-ui.css" "$ui/swagger-ui-bundle.js" \
    "$ui/swagger-ui-standalone-preset.js" "$ui/favicon-32x32.png" \
    "$stage/usr/share/cc-metric-store/swagger-ui/"
install -m 0644 "$ui/LICENSE" "$stage/usr/share/doc/cc-metric-store/swagger-ui-dist.LICENSE"

# Runtime dependencies from the libraries the binary links (never -dev).
shlibs=$(cd build/deb && mkdir -p debian &&
         printf 'Source: cc-metric-store\n\nPackage: cc-metric-store\nArchitecture: any\n' \
           > debian/control &&
         dpkg-shlibdeps -O -e"../../$stage/usr/bin/cc-metric-store" 2>/dev/null |
         sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
rm -rf build/deb/debian

mkdir -p "$stage/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CONTROL
Package: cc-metric-store
Version: $version
Architecture: $arch
Maintainer: cc-metric-store in C developers <ccms@localhost>
Installed-Size: $size
Depends: $shlibs, adduser
Section: net
Priority: optional
Description: in-memory time-series store for ClusterCockpit
 A drop-in replacement for ClusterCockpit's Go cc-metric-store: the same
 config.json, HTTP API and checkpoint files, with compressed in-memory
 storage, a crash-safe write-ahead log, NATS JetStream ingest and
 Prometheus metrics. Runs as the systemd service cc-metric-store.
CONTROL
echo /etc/cc-metric-store/config.json > "$stage/DEBIAN/conffiles"

cat > "$stage/DEBIAN/postinst" <<'SCRIPT'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if ! getent passwd cc-metric-store >/dev/null; then
        adduser --system --group --quiet --home /var/lib/cc-metric-store --no-create-home \
                --gecos "cc-metric-store" cc-metric-store
    fi
    install -d -o cc-metric-store -g cc-metric-store -m 0750 /var/lib/cc-metric-store
    # the config may hold secrets (NATS password, backend token)
    chown root:cc-metric-store /etc/cc-metric-store/config.json
    chmod 0640 /etc/cc-metric-store/config.json
    if command -v deb-systemd-helper >/dev/null; then
        deb-systemd-helper enable cc-metric-store.service >/dev/null || true
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null || true
        deb-systemd-invoke restart cc-metric-store.service >/dev/null || true
    fi
fi
exit 0
SCRIPT

cat > "$stage/DEBIAN/prerm" <<'SCRIPT'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    deb-systemd-invoke stop cc-metric-store.service >/dev/null || true
fi
exit 0
SCRIPT

cat > "$stage/DEBIAN/postrm" <<'SCRIPT'
#!/bin/sh
set -e
# The data in /var/lib/cc-metric-store and the user stay, also on purge:
# metrics are not thrown away by a package operation.
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
fi
if [ "$1" = purge ] && command -v deb-systemd-helper >/dev/null; then
    deb-systemd-helper purge cc-metric-store.service >/dev/null || true
fi
exit 0
SCRIPT
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"

dpkg-deb --root-owner-group -Zxz --build "$stage" "$out" >/dev/null
echo "$out"
