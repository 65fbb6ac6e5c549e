#!/usr/bin/env bash
# Lint the collection: ansible-lint (production profile, .ansible-lint), then
# ruff and mypy --strict on the typed Python (every plugins/ directory: the
# modules and their module_utils, the action, filter and doc-fragment plugins,
# plugin_utils). Every linter runs; the script fails if any failed.
#
# Usage: scripts/lint.sh [COLLECTION_ROOT]
#   COLLECTION_ROOT  directory holding galaxy.yml (default: this repo). Its own
#                    .ansible-lint / pyproject.toml are used when present,
#                    otherwise this repo's.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COLL="$(cd "${1:-${REPO}}" && pwd)"
BIN="${REPO}/.venv/bin"
[[ -x "${BIN}/ansible-lint" ]] || {
    echo "lint.sh: ${BIN}/ansible-lint missing; run scripts/venv.sh (make venv) first" >&2
    exit 1
}
# Tools find each other (ansible-lint runs ansible-playbook, ansible-galaxy).
export PATH="${BIN}:${PATH}"
export VIRTUAL_ENV="${REPO}/.venv"
[[ -f "${COLL}/galaxy.yml" ]] || { echo "lint.sh: no galaxy.yml in ${COLL}" >&2; exit 1; }

cfg() { # the collection's own config file, else this repo's
    if [[ -f "${COLL}/$1" ]]; then echo "${COLL}/$1"; else echo "${REPO}/$1"; fi
}
LINT_CFG="$(cfg .ansible-lint)"
PYPROJECT="$(cfg pyproject.toml)"

read -r NS NAME < <("${BIN}/python" - "${COLL}/galaxy.yml" <<'PY'
import sys
import yaml
with open(sys.argv[1], encoding="utf-8") as f:
    g = yaml.safe_load(f)
print(g["namespace"], g["name"])
PY
)
[[ -n "${NS:-}" && -n "${NAME:-}" ]] || { echo "${0##*/}: cannot read namespace/name from ${COLL}/galaxy.yml" >&2; exit 1; }

failed=()
run() { # run NAME CMD...: run a linter, remember failures, keep going
    local name="$1"
    shift
    echo "==> lint: ${name}"
    if "$@"; then
        echo "==> lint: ${name}: ok"
    else
        echo "==> lint: ${name}: FAILED" >&2
        failed+=("${name}")
    fi
}

# The collection under its import name, ansible_collections.<ns>.<name>, as a
# symlink to the work tree: mypy type-checks the Python under the module
# names Ansible imports it by.
LAYOUT="$(mktemp -d "${TMPDIR:-/tmp}/lint-layout.XXXXXX")"
trap 'rm -rf "${LAYOUT}"' EXIT
mkdir -p "${LAYOUT}/ansible_collections/${NS}"
ln -s "${COLL}" "${LAYOUT}/ansible_collections/${NS}/${NAME}"
# Only this collection; community.docker etc. come from the `ansible` package
# in the venv's site-packages (found through sys.path).
export ANSIBLE_COLLECTIONS_PATH="${LAYOUT}"

cd "${COLL}"

# ansible-lint finds files through git (tracked + untracked-not-ignored) and
# then applies exclude_paths from the config. It runs as a plain
# `ansible-lint --profile production` at the root does, without the layout
# above: wideep.gb200.* resolves through ansible.cfg's collections/ link.
run ansible-lint env -u ANSIBLE_COLLECTIONS_PATH ansible-lint --config-file "${LINT_CFG}" --nocolor

py_dirs=()
for d in plugins/plugin_utils plugins/module_utils plugins/modules plugins/action plugins/filter plugins/doc_fragments; do
    if [[ -d "${d}" ]] && [[ -n "$(find "${d}" -name '*.py' -print -quit)" ]]; then
        py_dirs+=("${d}")
    fi
done

if [[ ${#py_dirs[@]} -eq 0 ]]; then
    echo "==> lint: ruff, mypy: no Python under plugins/; skipped"
else
    # ruff sees every Python file of the tree (it skips git-ignored paths such as .venv, build).
    run ruff ruff check --config "${PYPROJECT}" --no-cache .

    # mypy must see the code under its import name,
    # ansible_collections.<ns>.<name>.plugins..., as Ansible imports it.
    pkgs=()
    for d in "${py_dirs[@]}"; do
        pkgs+=(-p "ansible_collections.${NS}.${NAME}.${d//\//.}")
    done
    mypy_run() { # report paths relative to the collection, not the symlink tree
        MYPYPATH="${LAYOUT}" mypy --config-file "${PYPROJECT}" --strict \
            --cache-dir "${REPO}/build/.mypy_cache" "${pkgs[@]}" \
            | sed "s#${LAYOUT}/ansible_collections/${NS}/${NAME}/##"
    }
    run mypy mypy_run
    if [[ -d python ]]; then # the Python API (python/wideep_gb200) is typed too
        run mypy-api mypy --config-file "${PYPROJECT}" --strict --cache-dir "${REPO}/build/.mypy_cache" python/wideep_gb200
    fi
fi

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "lint.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "lint.sh: all linters passed"
