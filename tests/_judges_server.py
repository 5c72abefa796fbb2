"""A loopback server that speaks the OpenAI chat-completions API, for judge tests and benches.

It answers POST /v1/chat/completions (and /chat/completions) on 127.0.0.1 with a real HTTP
response, after `latency_s`. Tests script failures per request: `plan[marker]` is a list of
behaviours consumed one per call by requests whose last message contains `marker`:

    "ok" | "429" | "500" | "503" | "401" | "403" | "404" | "401echo" | "timeout" | "malformed"
    | "nochoices"

("401echo" puts the Authorization header in the error message, as careless servers do.)

It records what a test needs to check: total requests, the most requests in flight at once,
calls per marker, and whether every request carried the expected bearer key (the key itself is
never echoed in a response body).

`die_after=N` kills the server as a crash would: after N answered requests the next one gets
its connection closed without an answer and the listening socket closes (later requests are
refused). A new server on the same `port` is the server back up.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def default_reply(messages: list[dict[str, str]]) -> str:
    return "ok: " + messages[-1]["content"][-40:]


class FakeChatServer:
    """Start with `with FakeChatServer() as server:`; `server.base_url` goes into JudgeSpec."""

    def __init__(
        self,
        latency_s: float = 0.0,
        reply: Callable[[list[dict[str, str]]], str] = default_reply,
        expected_key: str | None = None,
        retry_after: str = "0.05",
        stall_s: float = 2.0,
        port: int = 0,
        die_after: int | None = None,
        count_tokens: Callable[[str], int] = lambda text: len(text.split()),
    ):
        self.latency_s = latency_s
        self.reply = reply
        self.expected_key = expected_key
        self.retry_after = retry_after  # Retry-After header sent with every 429
        self.stall_s = stall_s  # how long a "timeout" behaviour stalls before answering
        self.plan: dict[str, list[str]] = {}
        self.calls: dict[str, int] = {}
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.bad_auth = 0
        self.bodies: list[dict[str, Any]] = []
        self.die_after = die_after
        self.count_tokens = count_tokens  # the usage it reports (words, unless told)
        self.usage: list[tuple[int, int]] = []  # (prompt, completion) tokens of each answer
        self.answered = 0  # requests answered 200
        self.dead = False
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> FakeChatServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.dead:
            self._httpd.shutdown()
            self._httpd.server_close()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def _die(self) -> None:
        """Stop serving and close the listening socket (from a thread of its own)."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def reset_counts(self) -> None:
        with self._lock:
            self.requests = self.max_in_flight = self.bad_auth = 0
            self.calls.clear()
            self.bodies.clear()

    def _next_behaviour(self, content: str) -> str:
        with self._lock:
            for marker, steps in self.plan.items():
                if marker in content:
                    self.calls[marker] = self.calls.get(marker, 0) + 1
                    return steps.pop(0) if steps else "ok"
        return "ok"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between header and body

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    dying = server.die_after is not None and server.answered >= server.die_after
                    if dying and not server.dead:
                        server.dead = True
                        threading.Thread(target=server._die, daemon=True).start()
                if dying:  # a crashed server answers nothing
                    self.close_connection = True
                    return
                with server._lock:
                    server.requests += 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    server.bodies.append(body)
                    if server.expected_key is not None:
                        auth = self.headers.get("Authorization", "")
                        server.bad_auth += auth != f"Bearer {server.expected_key}"
                try:
                    self._answer(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _answer(self, body: dict[str, Any]) -> None:
                messages = body.get("messages") or [{"content": ""}]
                behaviour = server._next_behaviour(str(messages[-1].get("content", "")))
                time.sleep(server.latency_s)
                if behaviour == "timeout":
                    time.sleep(server.stall_s)
                if behaviour == "429":
                    self._send(
                        429,
                        {"error": {"message": "rate limited"}},
                        {"Retry-After": server.retry_after},
                    )
                elif behaviour in ("500", "503"):
                    self._send(int(behaviour), {"error": {"message": "server error"}})
                elif behaviour == "401":
                    self._send(401, {"error": {"message": "invalid api key"}})
                elif behaviour == "403":
                    self._send(403, {"error": {"message": "no access to this model"}})
                elif behaviour == "404":
                    self._send(404, {"error": {"message": "no such model"}})
                elif behaviour == "401echo":
                    auth = self.headers.get("Authorization", "")
                    self._send(401, {"error": {"message": f"invalid api key {auth}"}})
                elif behaviour == "malformed":
                    self._send_raw(200, b'{"id": "x", "choices": [ {broken')
                elif behaviour == "nochoices":
                    self._send(200, {"id": "x", "object": "chat.completion"})
                else:
                    text = server.reply(messages)
                    with server._lock:
                        server.answered += 1
                    prompt_tokens = sum(
                        server.count_tokens(str(m.get("content", ""))) for m in messages
                    )
                    completion_tokens = server.count_tokens(text)
                    with server._lock:
                        server.usage.append((prompt_tokens, completion_tokens))
                    self._send(
                        200,
                        {
                            "id": "chatcmpl-fake",
                            "object": "chat.completion",
                            "created": 0,
                            "model": body.get("model", "?"),
                            "choices": [
                                {
                                    "index": 0,
                                    "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": text},
                                }
                            ],
                            "usage": {
                                "prompt_tokens": prompt_tokens,
                                "completion_tokens": completion_tokens,
                                "total_tokens": prompt_tokens + completion_tokens,
                            },
                        },
                    )

            def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
                self._send_raw(status, json.dumps(payload).encode(), headers)

            def _send_raw(self, status: int, data: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler
