#!/usr/bin/env bash
# Capture what gpu_info reads on a real GPU host, into DIR (default $OUT, the device tool's
# output folder). Read-only: changes nothing on the host. See tests/device/README.md.
set -uo pipefail
DIR="${1:-${OUT:?give an output directory}}"
mkdir -p "${DIR}"
nvidia-smi -q -x >"${DIR}/nvidia-smi-q-x.xml"
nvidia-smi -q >"${DIR}/nvidia-smi-q.txt" 2>&1
# shellcheck disable=SC2016  # run() hands each command line to bash -c, which expands it
{
    section() { printf '\n===== %s\n' "$*"; }
    run() { section "$*"; bash -c "$*" 2>&1; echo "[rc=$?]"; }
    run 'nvidia-smi --version'
    run 'nvidia-smi --query-gpu=index,uuid,name,compute_cap,driver_version,persistence_mode,memory.total --format=csv'
    run 'nvidia-smi --query-gpu=uuid,compute_cap --format=csv,noheader,nounits'
    run 'cat /proc/driver/nvidia/version'
    run 'ls -la /proc/driver/nvidia /proc/driver/nvidia/gpus'
    run 'cat /proc/driver/nvidia/params'
    run 'cat /sys/module/nvidia/version; ls /sys/module | grep -i -E "nvidia|gdr|^ib_|mlx|rdma"'
    run 'lsmod | grep -i -E "nvidia|gdr|ib_|mlx"'
    run 'grep -i -E "nvidia|gdr" /proc/devices'
    run 'ls -la /dev/nvidia* /dev/gdrdrv /dev/infiniband /dev/nvidia-caps-imex-channels'
    run 'ls -la /sys/class/infiniband; for p in /sys/class/infiniband/*/ports/*; do echo "$p $(cat $p/state) $(cat $p/phys_state) $(cat $p/link_layer)"; done'
    run 'command -v nvidia-smi nvidia-imex nvidia-imex-ctl systemctl; systemctl is-active nvidia-imex'
    run 'ls -la /etc/nvidia-imex; cat /etc/nvidia-imex/nodes_config.cfg'
    run 'ulimit -l; ulimit -Hl; bash -lc "ulimit -l"'
    run 'python3 -c "import resource; print(resource.getrlimit(resource.RLIMIT_MEMLOCK))"'
    run 'cat /etc/security/limits.conf | grep -v "^#" | grep -v "^$"; ls -la /etc/security/limits.d; cat /etc/security/limits.d/*.conf'
    run 'uname -a; cat /etc/os-release; python3 --version; id'
    run 'ls /boot; f=/boot/config-$(uname -r); if [ -r "$f" ]; then grep -E "DMA_SHARED_BUFFER|INFINIBAND" "$f"; elif [ -r /proc/config.gz ]; then zcat /proc/config.gz | grep -E "DMA_SHARED_BUFFER|INFINIBAND"; else echo no kernel config; fi'
    run 'df -B1 / /tmp; stat -f /'
    run 'find / -xdev -name "nvsmi_device*.dtd" 2>/dev/null | head -3'
    run "python3 - <<'PY'
import ctypes
cu = ctypes.CDLL('libcuda.so.1')
print('cuInit', cu.cuInit(0))
n = ctypes.c_int(); print('count', cu.cuDeviceGetCount(ctypes.byref(n)), n.value)
for i in range(n.value):
    d = ctypes.c_int(); cu.cuDeviceGet(ctypes.byref(d), i)
    for a in (75, 76, 124, 116, 128, 129):
        v = ctypes.c_int(-1); rc = cu.cuDeviceGetAttribute(ctypes.byref(v), a, d)
        print(i, 'attr', a, 'rc', rc, 'value', v.value)
v = ctypes.c_int(); cu.cuDriverGetVersion(ctypes.byref(v)); print('driver cuda version', v.value)
PY"
} >"${DIR}/probe.txt" 2>&1
dtd="$(find / -xdev -name 'nvsmi_device*.dtd' 2>/dev/null | head -1)"
[[ -n "${dtd}" ]] && cp "${dtd}" "${DIR}/nvsmi_device.dtd"
echo "capture.sh: wrote" "${DIR}"/*
