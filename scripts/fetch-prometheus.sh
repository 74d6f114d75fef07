#!/usr/bin/env bash
# Puts a Prometheus server in .cache/prometheus/ for tests/e2e/test_observability.py: Debian's
# package, unpacked there rather than installed, so nothing system-wide changes. Idempotent: a
# binary already there (or one named by DRIPLINE_PROMETHEUS) is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/prometheus
binary=$dest/usr/bin/prometheus
if [ -n "${DRIPLINE_PROMETHEUS:-}" ]; then
    exec "$DRIPLINE_PROMETHEUS" --version
fi
if [ -x "$binary" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    echo "fetch-prometheus: needs apt-get and dpkg-deb (Debian); or set DRIPLINE_PROMETHEUS" \
        "to a prometheus binary" >&2
    exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A fresh machine may have no package lists yet: update once, then try again.
if ! (cd "$work" && apt-get download -q prometheus); then
    apt-get update -q
    (cd "$work" && apt-get download -q prometheus)
fi
mkdir -p "$dest"
dpkg-deb -x "$work"/prometheus_*.deb "$dest"
"$binary" --version
