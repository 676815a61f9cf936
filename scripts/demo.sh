#!/usr/bin/env bash
# Install community-edge into .venv and run the demo (its own mosquitto, agent, API, simulated community).
# Works on a fresh Debian machine with Python 3.11+: installs python3-venv and mosquitto if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian installs daemons into sbin directories that a non-root PATH may lack.
have() {
    command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/usr/local/sbin/$1" || -x "/sbin/$1" ]]
}

missing=()
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
have mosquitto || missing+=(mosquitto)  # the demo starts its own broker on a free port
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ "$(id -u)" -eq 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "${missing[*]} missing and this is neither root nor has sudo; as root:" >&2
        echo "  apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
    echo "installing ${missing[*]}" >&2
    # apt may say that policy-rc.d denied starting mosquitto.service: the demo never uses it.
    ${sudo[@]+"${sudo[@]}"} apt-get update -qq
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
exec .venv/bin/community-edge demo "$@"
