"""Write a synthetic model in the layout of DeepSeek-R1: safetensors shards + index + config.

    python3 make_model.py DIR --shards 163 --shard-bytes 4194304 [--seed 0]

Every shard is a real safetensors file (header + one U8 tensor of random bytes), and
model.safetensors.index.json maps each tensor to its shard with metadata.total_size, so the
same checks that guard the real checkpoint apply. Idempotent: existing files are kept.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import struct


def write_shard(path: str, name: str, size: int, rng: random.Random) -> None:
    header = json.dumps({name: {"dtype": "U8", "shape": [size], "data_offsets": [0, size]}}).encode()
    header += b" " * (-len(header) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as handle:
        handle.write(struct.pack("<Q", len(header)) + header)
        remaining = size
        while remaining:
            block = min(remaining, 1 << 20)
            handle.write(rng.randbytes(block))
            remaining -= block
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dir")
    parser.add_argument("--shards", type=int, default=163)
    parser.add_argument("--shard-bytes", type=int, default=4 << 20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    weight_map = {}
    for index in range(1, args.shards + 1):
        shard = f"model-{index:05d}-of-{args.shards:06d}.safetensors"
        tensor = f"model.layers.{index}.weight"
        weight_map[tensor] = shard
        path = os.path.join(args.dir, shard)
        if not os.path.exists(path):
            write_shard(path, tensor, args.shard_bytes, random.Random(args.seed * 1_000_003 + index))
    index_doc = {"metadata": {"total_size": args.shards * args.shard_bytes}, "weight_map": weight_map}
    with open(os.path.join(args.dir, "model.safetensors.index.json"), "w", encoding="utf-8") as handle:
        json.dump(index_doc, handle, indent=1)
    with open(os.path.join(args.dir, "config.json"), "w", encoding="utf-8") as handle:
        json.dump({"architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "synthetic": True}, handle)


if __name__ == "__main__":
    main()
