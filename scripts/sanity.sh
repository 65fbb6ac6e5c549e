#!/usr/bin/env bash
# Run `ansible-test sanity` on the collection, without ansible-test's own
# download of get-pip.py (ci-files.testing.ansible.com is not reachable here).
#
# Usage: scripts/sanity.sh [COLLECTION_ROOT] [-- EXTRA_ANSIBLE_TEST_ARGS...]
#   COLLECTION_ROOT  git checkout holding galaxy.yml (default: this repo)
#
# What it does:
#   1. copies the collection's files (tracked + untracked-but-not-ignored, i.e.
#      exactly what `git ls-files --cached --others --exclude-standard` lists)
#      into <tmp>/ansible_collections/<namespace>/<name>/, the layout
#      ansible-test requires; .venv/, build/ and other ignored output never
#      reach ansible-test;
#   2. provides ~/.ansible/test/cache/get_pip_<ver>.py, the bootstrap script
#      ansible-test looks for before downloading one, as a small shim over
#      ensurepip + pip (PyPI is reachable, the ansible CI file server is not);
#   3. runs `ansible-test sanity --local --python 3.11` with the tests that
#      need tools we do not have (PowerShell) skipped. Any finding fails.
#
# Environment:
#   SANITY_PYTHON   Python version passed to --python (default 3.11)
#   SANITY_KEEP=1   keep the temporary copy (path is printed)
#   ANSIBLE_TEST    ansible-test executable (default: .venv/bin/ansible-test)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COLL="${REPO}"
if [[ $# -gt 0 && "$1" != "--" ]]; then
    COLL="$(cd "$1" && pwd)"
    shift
fi
if [[ $# -gt 0 && "$1" == "--" ]]; then
    shift
fi
EXTRA_ARGS=("$@")

PY_VER="${SANITY_PYTHON:-3.11}"
if [[ -z "${ANSIBLE_TEST:-}" ]]; then
    if [[ -x "${REPO}/.venv/bin/ansible-test" ]]; then
        ANSIBLE_TEST="${REPO}/.venv/bin/ansible-test"
    else
        ANSIBLE_TEST="$(command -v ansible-test || true)"
    fi
fi
[[ -n "${ANSIBLE_TEST}" && -x "${ANSIBLE_TEST}" ]] || {
    echo "sanity.sh: ansible-test not found; run scripts/venv.sh (make venv) first" >&2
    exit 1
}
# The Python that runs ansible-test (it owns the ansible_test package).
AT_PY="$(dirname "${ANSIBLE_TEST}")/python"
[[ -x "${AT_PY}" ]] || AT_PY="$(head -1 "${ANSIBLE_TEST}" | sed 's/^#!//')"
# ansible-test --local runs under the interpreter of the venv it lives in;
# make sure `python3.11` etc. resolve to it first.
PATH="$(dirname "${ANSIBLE_TEST}"):${PATH}"
export PATH

[[ -f "${COLL}/galaxy.yml" ]] || { echo "sanity.sh: no galaxy.yml in ${COLL}" >&2; exit 1; }
git -C "${COLL}" rev-parse --is-inside-work-tree >/dev/null 2>&1 || {
    echo "sanity.sh: ${COLL} is not a git work tree" >&2
    exit 1
}

read -r NS NAME < <("${AT_PY}" - "${COLL}/galaxy.yml" <<'PY'
import sys
import yaml
with open(sys.argv[1], encoding="utf-8") as f:
    g = yaml.safe_load(f)
print(g["namespace"], g["name"])
PY
)
[[ -n "${NS:-}" && -n "${NAME:-}" ]] || { echo "${0##*/}: cannot read namespace/name from ${COLL}/galaxy.yml" >&2; exit 1; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sanity.XXXXXX")"
cleanup() {
    if [[ "${SANITY_KEEP:-0}" == "1" ]]; then
        echo "sanity.sh: kept ${WORK}"
    else
        rm -rf "${WORK}"
    fi
}
trap cleanup EXIT
DEST="${WORK}/ansible_collections/${NS}/${NAME}"
mkdir -p "${DEST}"

# 1. Copy the files git would ship (skipping ones deleted in the work tree).
while IFS= read -r -d '' f; do
    # collections/ is the checkout's own link to itself (ansible.cfg finds the collection
    # through it); it is not collection content and ansible-test would walk into it.
    [[ "${f}" == collections/* ]] && continue
    if [[ -e "${COLL}/${f}" || -L "${COLL}/${f}" ]]; then
        printf '%s\0' "${f}"
    fi
done < <(git -C "${COLL}" ls-files -z --cached --others --exclude-standard) \
    | tar -C "${COLL}" --null --no-recursion -T - -cf - | tar -C "${DEST}" -xf -
# A failed `git ls-files` would otherwise leave an empty (and clean) copy.
[[ -f "${DEST}/galaxy.yml" ]] || {
    echo "sanity.sh: galaxy.yml did not reach ${DEST}: is it git-ignored, or did git fail?" >&2
    exit 1
}
echo "sanity.sh: ${NS}.${NAME}: $(find "${DEST}" -type f | wc -l) files copied from ${COLL} to ${DEST}"

# 2. Offline get-pip shim, under the exact name this ansible-test expects.
PIP_VER="$("${AT_PY}" - "${PY_VER}" <<'PY'
import sys
import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))["pip"])
PY
)"
CACHE="${HOME}/.ansible/test/cache"
SHIM="${CACHE}/get_pip_${PIP_VER//./_}.py"
mkdir -p "${CACHE}"
SHIM_NEW="$(mktemp "${CACHE}/.get_pip.XXXXXX")"
cat > "${SHIM_NEW}" <<'PY'
"""Offline stand-in for get-pip.py, written by scripts/sanity.sh.

ansible-test runs this inside a fresh `venv --without-pip` with arguments such
as `--disable-pip-version-check pip==24.2 --no-setuptools --no-wheel`.
Bootstrap pip from the standard library, then let pip install the pinned pip.
"""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
PY
if cmp -s "${SHIM_NEW}" "${SHIM}"; then
    rm -f "${SHIM_NEW}"
else
    mv "${SHIM_NEW}" "${SHIM}"
fi

# 3. Run. Skipped tests and why:
#   pslint      needs PowerShell (pwsh); the collection ships no PowerShell.
SKIP=(pslint)
skip_args=()
for t in "${SKIP[@]}"; do
    skip_args+=(--skip-test "${t}")
done
if ! command -v shellcheck >/dev/null 2>&1; then
    echo "sanity.sh: ERROR: shellcheck is not installed (apt-get install shellcheck)" >&2
    exit 1
fi

cd "${DEST}"
echo "sanity.sh: $("${ANSIBLE_TEST}" --version) sanity --local --python ${PY_VER}"
"${ANSIBLE_TEST}" sanity --local --python "${PY_VER}" --color no \
    "${skip_args[@]}" "${EXTRA_ARGS[@]}"
