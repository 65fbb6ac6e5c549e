#!/usr/bin/env bash
# The whole device run, from the repository root on the device tool's GPU host:
#   run(command="bash tests/device/run.sh", carry=["build/device-wheels"])
# build/device-wheels holds ansible-core, its dependencies and netaddr (the plan needs it) for Python 3.12 (README.md).
# Writes into $OUT: the captures (capture.sh), gpu_info's result, and the preflight logs.
set -uo pipefail
OUT="${OUT:?run through the device tool, or set OUT}"
# Without build/device-wheels, the ansible-core (and netaddr) already installed are used.
if compgen -G "build/device-wheels/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site build/device-wheels/*.whl || exit 1
    export PYTHONPATH=/tmp/site PATH="/tmp/site/bin:${PATH}"
fi
bash tests/device/capture.sh "${OUT}"
mkdir -p /tmp/collections/ansible_collections/wideep
ln -sfn "${PWD}" /tmp/collections/ansible_collections/wideep/gb200
export ANSIBLE_COLLECTIONS_PATH=/tmp/collections ANSIBLE_NOCOLOR=1 ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false ANSIBLE_HOST_KEY_CHECKING=false
play() { # play LOG ARGS...: one ansible-playbook run, its output in $OUT/LOG and its rc shown
    local log="$1"
    shift
    echo "===== ansible-playbook -i tests/device/inventory.yml tests/device/preflight.yml $*"
    ansible-playbook -i tests/device/inventory.yml tests/device/preflight.yml "$@" >"${OUT}/${log}" 2>&1
    echo "rc=$?"
}
ansible --version | head -1
play preflight-gb200.log --limit h200 -e "device_out=${OUT}"
play preflight-relaxed.log -e @tests/device/relaxed.yml
play preflight-check.log --check -e @tests/device/relaxed.yml
echo "===== ansible localhost -m wideep.gb200.gpu_info -a cuda_probe=false"
ansible localhost -c local -m wideep.gb200.gpu_info -a "cuda_probe=false disk_path=/models" >"${OUT}/gpu_info-nocuda.json" 2>&1
echo "rc=$?"
grep -E "^(\[ERROR\]|h200|fatal|ok: \[h200\] =>|  [0-9]+\. )" "${OUT}/preflight-gb200.log"
grep -A3 -E "Summarize|PLAY RECAP" "${OUT}/preflight-relaxed.log" "${OUT}/preflight-check.log"
ls "${OUT}"
