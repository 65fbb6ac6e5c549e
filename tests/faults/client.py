"""A steady stream of streaming chat completions against the Dynamo frontend, each outcome recorded.

Standard library only (threads + http.client), so it runs from any Python on the controller:

    python3 tests/faults/client.py http://HOST:8000 --model deepseek-ai/DeepSeek-R1 --seconds 30

N workers (threads) each send one streaming request after another. A request counts as OK only
when the HTTP status is 200, every SSE event parses, no event carries an error, and the stream
ends with a choice's finish_reason and `data: [DONE]`. Anything else is a client-visible error,
classified: `http` (status != 200 or the connection refused/reset before the status), `broken`
(the connection dropped or timed out mid-stream), `error-event` (the server put an error in the
stream), `incomplete` (the stream ended without a finish_reason or [DONE]).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

OUTCOMES = ("ok", "http", "broken", "error-event", "incomplete")


@dataclass(frozen=True)
class Outcome:
    start: float  # time.monotonic()
    end: float
    kind: str  # one of OUTCOMES
    detail: str = ""
    tokens: int = 0


@dataclass
class Load:
    """Threads streaming requests until stop(); outcomes() is everything that finished."""

    url: str
    model: str
    concurrency: int = 8
    max_tokens: int = 48
    timeout_s: float = 30.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _outcomes: list[Outcome] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._loop, args=(index,), name=f"fault-client-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout_s + 5)
        return self.outcomes()

    def outcomes(self) -> list[Outcome]:
        with self._lock:
            return list(self._outcomes)

    def _loop(self, index: int) -> None:
        sequence = 0
        while not self._stop.is_set():
            outcome = one_request(self.url, self.model, f"client {index} request {sequence}: count to twenty.", self.max_tokens, self.timeout_s)
            sequence += 1
            with self._lock:
                self._outcomes.append(outcome)
            if outcome.kind == "http":
                self._stop.wait(0.2)  # a refused frontend is not hammered in a tight loop


def one_request(url: str, model: str, prompt: str, max_tokens: int, timeout_s: float) -> Outcome:
    parts = urlsplit(url)
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens, "stream": True, "ignore_eos": True})
    start = time.monotonic()
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=timeout_s)
    status_seen = False
    try:
        conn.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
        response = conn.getresponse()
        status_seen = True
        if response.status != 200:
            text = response.read(300).decode(errors="replace")
            return Outcome(start, time.monotonic(), "http", f"{response.status} {text}".strip())
        return _read_stream(response, start)
    except (OSError, http.client.HTTPException) as exc:
        kind = "broken" if status_seen else "http"
        return Outcome(start, time.monotonic(), kind, f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()


def _read_stream(response: http.client.HTTPResponse, start: float) -> Outcome:
    finished, done, tokens = False, False, 0
    while True:
        line = response.readline()
        if not line:
            break
        text = line.decode(errors="replace").strip()
        if not text.startswith("data:"):
            if text.startswith("event:") and "error" in text:
                return Outcome(start, time.monotonic(), "error-event", text[:300])
            continue
        data = text[5:].strip()
        if data == "[DONE]":
            done = True
            break
        try:
            event: Any = json.loads(data)
        except ValueError:
            return Outcome(start, time.monotonic(), "error-event", f"unparsable event: {data[:200]}")
        if not isinstance(event, dict) or "error" in event:
            return Outcome(start, time.monotonic(), "error-event", data[:300])
        for choice in event.get("choices") or []:
            if (choice.get("delta") or {}).get("content"):
                tokens += 1
            finished = finished or bool(choice.get("finish_reason"))
    if done and finished:
        return Outcome(start, time.monotonic(), "ok", tokens=tokens)
    return Outcome(start, time.monotonic(), "incomplete", f"finish_reason={finished} [DONE]={done} after {tokens} tokens", tokens)


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    counts = {kind: sum(1 for o in outcomes if o.kind == kind) for kind in OUTCOMES}
    errors = [o for o in outcomes if o.kind != "ok"]
    return {
        "requests": len(outcomes),
        "errors": len(errors),
        "by_kind": counts,
        "error_samples": sorted({f"{o.kind}: {o.detail}"[:200] for o in errors})[:5],
    }


def wait_for_health(url: str, check: Any, timeout_s: float) -> float | None:
    """Poll URL/health until check(document) is true: seconds it took, or None on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        document = health(url)
        if document is not None and check(document):
            return time.monotonic() - start
        time.sleep(0.5)
    return None


def health(url: str) -> Any:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=5)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        return json.loads(response.read()) if response.status == 200 else None
    except (TimeoutError, OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the frontend, e.g. http://172.31.240.10:8000 (the plan's frontend.url)")
    parser.add_argument("--model", default="deepseek-ai/DeepSeek-R1")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=48)
    args = parser.parse_args(argv)
    load = Load(args.url, args.model, args.concurrency, args.max_tokens).start()
    time.sleep(args.seconds)
    outcomes = load.stop()
    result = summary(outcomes)
    result["outcomes"] = [asdict(o) for o in outcomes]
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
