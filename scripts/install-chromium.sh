#!/usr/bin/env bash
# Install Debian's headless Chromium for the dashboard tests, only when it is missing.
# Why Debian's package: the machines reach Debian's archive but no browser download site, so
# playwright drives this binary (executable_path=/usr/bin/chromium) instead of fetching its own.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
sudo_if_needed=()
if [ "$(id -u)" -ne 0 ]; then
    sudo_if_needed=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_if_needed[@]}" apt-get update
"${sudo_if_needed[@]}" apt-get install -y chromium fonts-dejavu-core
/usr/bin/chromium --version
