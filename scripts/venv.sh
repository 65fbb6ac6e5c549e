#!/usr/bin/env bash
# Create or update the project virtual environment (.venv) from
# requirements.txt + requirements-dev.txt.
#
# Idempotent and fast when nothing changed: a hash of the requirement files,
# this script and the interpreter is stored in the venv; a matching hash means
# there is nothing to do.
#
# Environment:
#   VENV    venv directory (default: <repo>/.venv)
#   PYTHON  interpreter used to create it (default: python3.11, else python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-${ROOT}/.venv}"
STAMP="${VENV}/.requirements.sha256"
REQS=("${ROOT}/requirements.txt" "${ROOT}/requirements-dev.txt")
# The checkout's own Python package (wideep_gb200, the `wideep` command) is installed editable;
# its metadata (dependencies, entry points) is in pyproject.toml.
PYPROJECT="${ROOT}/pyproject.toml"

# System prerequisites of `make test` on Debian (README: a fresh Debian 12 with
# make is enough): python3 + python3-venv (Debian splits venv/ensurepip out),
# git (the scripts list files through it) and the shellcheck binary (without
# it ansible-test's shellcheck sanity test passes silently). Installed when missing
# and we are root; otherwise named, and the run fails.
apt_ensure() {
    command -v dpkg-query >/dev/null 2>&1 || return 0 # not Debian: the user's job
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "${p}" 2>/dev/null | grep -q 'install ok installed' || missing+=("${p}")
    done
    [[ ${#missing[@]} -gt 0 ]] || return 0
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "venv.sh: installing system packages: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
    else
        echo "venv.sh: missing system packages (install them as root): ${missing[*]}" >&2
        exit 1
    fi
}

if [[ -z "${PYTHON:-}" ]]; then
    if ! command -v python3.11 >/dev/null 2>&1 && ! command -v python3 >/dev/null 2>&1; then
        apt_ensure python3 python3-venv
    fi
    if command -v python3.11 >/dev/null 2>&1; then
        PYTHON=python3.11
    else
        PYTHON=python3
    fi
fi
sys_pkgs=(git shellcheck)
if [[ "$(readlink -f "$(command -v "${PYTHON}")")" == /usr/bin/* ]]; then
    sys_pkgs+=(python3-venv) # Debian's own python3
fi
apt_ensure "${sys_pkgs[@]}"

# ansible-core 2.19 needs Python >= 3.11 on the controller.
if ! "${PYTHON}" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
    echo "venv.sh: ${PYTHON} is older than 3.11; ansible-core 2.19 needs >= 3.11" >&2
    exit 1
fi

for req in "${REQS[@]}"; do
    [[ -f "${req}" ]] || { echo "venv.sh: missing ${req}" >&2; exit 1; }
done

py_id="$("${PYTHON}" -c 'import sys, platform; print(sys.version, platform.machine())')"
want="$( { cat "${REQS[@]}" "${PYPROJECT}" "${BASH_SOURCE[0]}"; echo "${py_id}"; } | sha256sum | cut -d' ' -f1)"

if [[ -f "${STAMP}" && -x "${VENV}/bin/python" ]] && [[ "$(cat "${STAMP}")" == "${want}" ]] \
    && "${VENV}/bin/python" -c '' 2>/dev/null; then
    echo "venv.sh: ${VENV} is up to date"
    exit 0
fi

venv_py_id=""
if [[ -x "${VENV}/bin/python" ]]; then
    venv_py_id="$("${VENV}/bin/python" -c 'import sys, platform; print(sys.version, platform.machine())' 2>/dev/null || true)"
fi
if [[ "${venv_py_id}" != "${py_id}" ]]; then
    # Missing, broken, or made by another interpreter: start clean.
    echo "venv.sh: creating ${VENV} with $("${PYTHON}" --version 2>&1)"
    "${PYTHON}" -m venv --clear "${VENV}"
else
    echo "venv.sh: updating ${VENV} (requirements changed)"
fi

rm -f "${STAMP}"
export PIP_DISABLE_PIP_VERSION_CHECK=1
"${VENV}/bin/python" -m pip install --quiet --upgrade pip
"${VENV}/bin/python" -m pip install --quiet -r "${REQS[0]}" -r "${REQS[1]}"
# Editable: python/ on sys.path (hatchling's dev-mode-dirs), the `wideep` entry point in .venv/bin.
"${VENV}/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e "${ROOT}"
"${VENV}/bin/python" -m pip check
echo "${want}" > "${STAMP}"
echo "venv.sh: ${VENV} ready ($("${VENV}/bin/ansible" --version | sed -n 1p))"
