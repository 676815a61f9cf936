#!/usr/bin/env bash
# Install community-edge into .venv and run the demo (broker, agent, API, simulated community).
# Works on a fresh Debian machine with Python 3.11+: installs python3-venv if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    echo "installing python3-venv (needs root)" >&2
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq python3-venv
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
exec .venv/bin/community-edge demo "$@"
