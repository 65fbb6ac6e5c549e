"""After `make demo`: print the frontend's address and one completion, streamed through it."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import yaml


def frontend_url(inventory: Path) -> str:
    data = yaml.safe_load(inventory.read_text())
    gb200 = data["all"]["children"]["gb200"]
    head = next(iter(gb200["children"]["dynamo_head"]["hosts"]))
    return f"http://{gb200['hosts'][head]['ansible_host']}:8000"


def main() -> None:
    url = frontend_url(Path(sys.argv[1]))
    body = json.dumps(
        {
            "model": "deepseek-ai/DeepSeek-R1",
            "messages": [{"role": "user", "content": "Explain wide expert parallelism in one sentence."}],
            "max_tokens": 24,
        }
    ).encode()
    request = urllib.request.Request(f"{url}/v1/chat/completions", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    sys.stdout.write(f"frontend: {url}\n")
    sys.stdout.write(f"completion ({answer['usage']['completion_tokens']} tokens): {answer['choices'][0]['message']['content']}\n")


if __name__ == "__main__":
    main()
