#!/usr/bin/env bash
# Install headless Chromium and its WebDriver (Debian packages `chromium`, `chromium-driver`, at /usr/bin)
# for the report's browser test, unless they are already there. Needs root (or sudo) and apt.
# Nothing is downloaded by the tests themselves: selenium is pointed at these binaries.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  echo "ci_browser: $(/usr/bin/chromium --version 2>/dev/null | head -n1) and chromedriver present" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "ci_browser: need root (or sudo) to install chromium and chromium-driver" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
echo "ci_browser: installed $(/usr/bin/chromium --version 2>/dev/null | head -n1)" >&2
