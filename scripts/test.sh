#!/usr/bin/env bash
# Install the test servers if missing, build .venv, then lint, type-check and run the tests.
# Usage: scripts/test.sh [pytest arguments...]   (from any directory)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Debian installs daemons into sbin directories that a non-root PATH may lack.
have() {
    command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" || -x "/usr/local/sbin/$1" || -x "/sbin/$1" ]]
}

if ! have mosquitto || ! have victoria-metrics; then
    if [[ "$(id -u)" -eq 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "mosquitto or victoria-metrics is missing and this is neither root nor has sudo:" >&2
        echo "  apt-get install -y --no-install-recommends mosquitto victoria-metrics" >&2
        exit 1
    fi
    # apt may say that policy-rc.d denied starting victoria-metrics.service: the tests start their
    # own servers on free ports and never use the system services.
    ${sudo[@]+"${sudo[@]}"} apt-get update
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends mosquitto victoria-metrics
fi

# Debian keeps PostgreSQL's server binaries (initdb, postgres) in /usr/lib/postgresql/<version>/bin;
# the tests run a private cluster on a free port and never the system service.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null 2>&1; then
    if [[ "$(id -u)" -eq 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "PostgreSQL is missing and this is neither root nor has sudo:" >&2
        echo "  apt-get install -y --no-install-recommends postgresql" >&2
        exit 1
    fi
    ${sudo[@]+"${sudo[@]}"} apt-get update
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends postgresql
fi

# The duty console's browser tests drive Debian's chromium through Playwright (a Playwright browser
# download cannot work offline); fonts-noto-cjk draws the Chinese pages in screenshots.
if ! command -v chromium >/dev/null 2>&1 || [[ ! -d /usr/share/fonts/opentype/noto ]]; then
    if [[ "$(id -u)" -eq 0 ]]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "chromium or fonts-noto-cjk is missing and this is neither root nor has sudo:" >&2
        echo "  apt-get install -y --no-install-recommends chromium fonts-noto-cjk" >&2
        exit 1
    fi
    ${sudo[@]+"${sudo[@]}"} apt-get update
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends chromium fonts-noto-cjk
fi

if [[ ! -x .venv/bin/python ]]; then
    python="${PYTHON:-python3}"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "$python is $("$python" -V 2>&1); community-edge needs Python 3.11 or newer" >&2
        exit 1
    fi
    if ! "$python" -c 'import ensurepip, venv' 2>/dev/null && [[ "$(id -u)" -eq 0 ]]; then
        apt-get update && env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
    fi
    "$python" -m venv .venv || {
        echo "creating .venv failed; on Debian: apt-get install python3-venv" >&2
        exit 1
    }
fi

# pip 25.1 is the first to install PEP 735 dependency groups (--group).
.venv/bin/python -m pip install --quiet --upgrade 'pip>=25.1'
.venv/bin/python -m pip install --quiet -e . --group dev

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest -q "$@"
