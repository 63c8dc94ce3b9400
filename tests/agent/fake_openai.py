"""A small OpenAI-compatible HTTP server on 127.0.0.1 for the provider tests.

It answers chat completions and responses with one `message_member` tool call and
records every request it gets. `failures` scripts trouble, one entry per request in
order: "429" (rate limited), "500" (server error) or "timeout" (answers only after
`slow_seconds`, later than the model activity waits); when the script is used up it
answers normally again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAILURES = ("429", "500", "timeout")


@dataclass
class FakeOpenAI:
    base_url: str = ""
    seen: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    slow_seconds: float = 5.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_failure(self, request: dict[str, Any]) -> str | None:
        with self.lock:
            failure = self.failures.pop(0) if self.failures else None
            self.seen.append({**request, "failure": failure})
        return failure


def _reply(path: str, model: str) -> dict[str, Any] | None:
    arguments = json.dumps({"text": "We are on it.", "reason": "answer the ticket"})
    if path.endswith("/chat/completions"):
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "tool_calls",
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "message_member", "arguments": arguments},
                            }
                        ],
                    },
                }
            ],
            "usage": {"prompt_tokens": 1_200, "completion_tokens": 300, "total_tokens": 1_500},
        }
    if path.endswith("/responses"):
        return {
            "id": "resp_1",
            "object": "response",
            "created_at": 0,
            "status": "completed",
            "model": model,
            "output": [
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_1",
                    "name": "message_member",
                    "arguments": arguments,
                    "status": "completed",
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": {
                "input_tokens": 1_200,
                "output_tokens": 300,
                "total_tokens": 1_500,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        fake = self.server.fake
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        failure = fake.next_failure(
            {"path": self.path, "authorization": self.headers.get("Authorization"), "body": body}
        )
        try:
            if failure == "429":
                self._send(429, {"error": {"message": "rate limited"}}, {"retry-after-ms": "200"})
                return
            if failure == "500":
                self._send(500, {"error": {"message": "internal error"}})
                return
            if failure == "timeout":
                time.sleep(fake.slow_seconds)
            reply = _reply(self.path, body.get("model", ""))
            if reply is None:
                self.send_error(404)
                return
            self._send(200, reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout): nobody to answer

    def _send(
        self, status: int, reply: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOpenAI


@contextmanager
def serve(host: str = "127.0.0.1") -> Iterator[FakeOpenAI]:
    server = _Server((host, 0), _Handler)
    server.fake = FakeOpenAI(base_url=f"http://{host}:{server.server_address[1]}/v1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.fake
    finally:
        server.shutdown()
        server.server_close()
