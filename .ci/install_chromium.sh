#!/usr/bin/env bash
# Make sure headless Chromium is there for tests/top/test_report.py (Debian's package `chromium`).
# Without apt-get the browser test skips and says why; a failed install makes that test fail.
set -uo pipefail
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
        && command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; fi
    { $SUDO apt-get update -q && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } \
        >/dev/null || echo "could not install chromium; tests/top/test_report.py's browser test will fail" >&2
fi
exit 0
