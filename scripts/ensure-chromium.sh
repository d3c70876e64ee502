#!/usr/bin/env bash
# Install Debian's headless-capable Chromium when it is missing: the browser tests
# (tests/browser/) drive /usr/bin/chromium with Playwright and fail under CI=true without it.
# Idempotent; needs root (as the project's machines and CI run) or sudo.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "ensure-chromium: /usr/bin/chromium is missing and installing it needs root" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version 2>/dev/null || echo "chromium installed"
