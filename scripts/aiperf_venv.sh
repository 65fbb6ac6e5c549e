#!/usr/bin/env bash
# Build (or reuse) the venv that holds aiperf, the load generator of wideep.gb200.bench, and
# print the path of its `aiperf` executable on the last line of stdout.
#
# aiperf lives apart from .venv: its requirements conflict with the dev set (huggingface-hub<2.0
# against huggingface_hub==2.4.0) and weigh ~1.2 GB. The venv sits in a cache outside the
# checkout, keyed by the hash of requirements-aiperf.txt and the interpreter, so every checkout
# on a machine shares one and a second run installs nothing.
#
# Environment:
#   WIDEEP_AIPERF_CACHE  where the venvs live (default ~/.cache/wideep-gb200/aiperf)
#   PYTHON               interpreter (default python3.11, else python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQS="${ROOT}/requirements-aiperf.txt"
CACHE="${WIDEEP_AIPERF_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/wideep-gb200/aiperf}"
if [[ -z "${PYTHON:-}" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi

py_id="$("${PYTHON}" -c 'import sys, platform; print(sys.version, platform.machine())')"
key="$( { cat "${REQS}"; echo "${py_id}"; } | sha256sum | cut -c1-16)"
VENV="${CACHE}/${key}"

if [[ -f "${VENV}/.complete" && -x "${VENV}/bin/aiperf" ]]; then
    echo "aiperf_venv.sh: ${VENV} is up to date" >&2
else
    echo "aiperf_venv.sh: building ${VENV} from requirements-aiperf.txt (~1.2 GB, a few minutes once per machine)" >&2
    rm -rf "${VENV}"
    mkdir -p "${CACHE}"
    "${PYTHON}" -m venv "${VENV}"
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    "${VENV}/bin/python" -m pip install --quiet -r "${REQS}" >&2
    "${VENV}/bin/python" -m pip check >&2
    touch "${VENV}/.complete"
fi
"${VENV}/bin/aiperf" --version >&2
echo "${VENV}/bin/aiperf"
