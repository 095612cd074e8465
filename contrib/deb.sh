#!/usr/bin/env bash
# Build the Debian package from a release tarball, lint it, install it, check
# the installed configuration, and purge it again (what CI runs):
#
#   bash contrib/deb.sh hl7bridge-X.Y.Z.tar.gz [OUTDIR]
#
# The tarball is `make dist`'s (it carries debian/). Installs the build
# dependencies with apt-get build-dep; needs root (or sudo) for that and for
# dpkg -i. Leaves the .deb files in OUTDIR (default: a temporary folder,
# removed). lintian errors and warnings fail the run; every override is
# explained in debian/hl7bridge.lintian-overrides.
set -euo pipefail
tarball=$(readlink -f "$1")
out=${2:-}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
work=$(mktemp -d)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
[ -n "$out" ] || out=$work/out
mkdir -p "$out"
out=$(readlink -f "$out")

tar xzf "$tarball" -C "$work"
src=$(echo "$work"/hl7bridge-*/)
missing=""
for p in dpkg-dev debhelper lintian fakeroot; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
export DEBIAN_FRONTEND=noninteractive
if [ -n "$missing" ]; then
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
(cd "$src" && $SUDO apt-get build-dep -y -qq ./ >/dev/null)

echo "== dpkg-buildpackage -us -uc -b"
(cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
	tail -n 60 "$work/build.log"; echo "dpkg-buildpackage failed"; exit 1; }
grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR):' "$work/build.log" || true
cp "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out"/
deb=$(ls "$out"/hl7bridge_*.deb)

echo "== lintian"
lintian --pedantic --fail-on error,warning "$out"/hl7bridge_*.changes 2>&1 |
	grep -v '^running with root privileges' || true
lintian --fail-on error,warning "$out"/hl7bridge_*.changes >/dev/null 2>&1 ||
	{ echo "lintian: errors or warnings (see above)"; exit 1; }

echo "== install $(basename "$deb")"
$SUDO dpkg -i "$deb" || $SUDO apt-get install -f -y -qq
dpkg-query -W -f='${Status}\n' hl7bridge | grep -q 'install ok installed'
getent passwd hl7bridge >/dev/null || { echo "no system user hl7bridge"; exit 1; }
[ "$(stat -c %U /var/lib/hl7bridge/drop)" = hl7bridge ] || { echo "drop dir not owned by hl7bridge"; exit 1; }
[ -f /lib/systemd/system/hl7bridge.service ] || { echo "no /lib/systemd/system/hl7bridge.service"; exit 1; }
if [ -e /etc/systemd/system/multi-user.target.wants/hl7bridge.service ] ||
	{ command -v systemctl >/dev/null && systemctl is-enabled hl7bridge.service >/dev/null 2>&1; }; then
	echo "hl7bridge.service is enabled after install; it must not be"; exit 1
fi
echo "system user: $(getent passwd hl7bridge)"
echo "unit installed, not enabled; conffiles: $(wc -l </var/lib/dpkg/info/hl7bridge.conffiles)"
echo "== hl7bridge check -c /etc/hl7bridge/hl7bridge.conf (as installed, from /)"
(cd / && runuser -u hl7bridge -- /usr/sbin/hl7bridge check -c /etc/hl7bridge/hl7bridge.conf) | tail -n 3
(cd / && /usr/sbin/hl7bridge map --test /etc/hl7bridge/mappings) | tail -n 1
man -l /usr/share/man/man8/hl7bridge.8.gz >/dev/null

echo "== purge"
$SUDO dpkg --purge hl7bridge
[ ! -e /etc/hl7bridge ] && [ ! -e /var/lib/hl7bridge ] && [ ! -e /usr/sbin/hl7bridge ] ||
	{ echo "files left after purge"; exit 1; }
echo "deb: built, lintian clean, installed, checked, purged"
