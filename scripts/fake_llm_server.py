#!/usr/bin/env python3
"""A local OpenAI-compatible chat server for tests: it records every request and answers from a script.

No real provider is reachable from the test machines, so the LLM client's tests and the runner's
end-to-end content-review test talk to this server instead. It speaks both paths:

    POST {prefix}/chat/completions                                  (OpenAI, Ollama, vLLM, llama.cpp, LM Studio)
    POST /openai/deployments/{deployment}/chat/completions?api-version=...   (Azure OpenAI)

Any other method or path is recorded and answered from the script all the same, so a test can
see exactly what the client sent.

Usage:
    python3 scripts/fake_llm_server.py --script responses.json --record requests.jsonl [--host 127.0.0.1] [--port 0]

Flags:
    --script FILE   JSON list of responses, used in order, one per request. Each element:
                      {"status": 200,                     (default 200)
                       "headers": {"Retry-After": "1"},   (optional, extra response headers)
                       "body": {...} or "text",           (a JSON value is sent as application/json;
                                                           a string is sent as-is, text/plain)
                       "delay": 0.5}                      (optional seconds to wait before answering)
                    A shorthand element {"reply": "text", "usage": [prompt, completion]} builds a
                    normal chat-completion body with that assistant text (usage optional).
                    A streaming element {"sse": [event, ...], "chunk_delay": 0.05} answers
                    text/event-stream: each event (a JSON value, or the string "[DONE]") is sent
                    as one "data: ..." event, chunk_delay seconds apart; the connection then closes.
                    When the list is used up, the LAST element is repeated (so a one-element
                    script answers every request the same). An empty list answers 500.
    --record FILE   JSON-lines file; one line per request, written and flushed BEFORE the response
                    is sent: {"index": n, "method": "POST", "path": "/v1/chat/completions?x=y",
                    "headers": {"Authorization": "...", ...}, "body": <parsed JSON or null>,
                    "raw_body": "<text when the body is not JSON>"}
    --host HOST     address to bind (default 127.0.0.1).
    --port PORT     port to bind (default 0: a free port chosen by the system).

The first line printed on stdout is the bound port number (then stdout is flushed), so a test
reads one line and connects to http://127.0.0.1:PORT. The server runs until it is terminated
(SIGTERM / SIGINT) or its stdin is closed when started with --exit-on-stdin-eof.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Script:
    def __init__(self, path, record_path):
        with open(path, "r", encoding="utf-8") as f:
            self.responses = json.load(f)
        if not isinstance(self.responses, list):
            raise SystemExit("fake_llm_server: --script must hold a JSON list")
        self.record_path = record_path
        self.lock = threading.Lock()
        self.count = 0

    def next(self, record):
        """Records the request and returns (index, response element)."""
        with self.lock:
            index = self.count
            self.count += 1
            record["index"] = index
            if self.record_path:
                with open(self.record_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record, sort_keys=True) + "\n")
                    f.flush()
            if not self.responses:
                return index, {"status": 500, "body": {"error": {"message": "fake server: empty script"}}}
            return index, self.responses[min(index, len(self.responses) - 1)]


def completion_body(text, usage):
    body = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fake-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1],
                         "total_tokens": usage[0] + usage[1]}
    return body


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    script = None  # set in main

    def log_message(self, fmt, *args):  # keep stderr quiet; the record file is the log
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        record = {"method": self.command, "path": self.path,
                  "headers": {k: v for k, v in self.headers.items()}, "body": None}
        if raw:
            try:
                record["body"] = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                record["raw_body"] = raw.decode("utf-8", errors="replace")
        _, response = self.script.next(record)

        delay = float(response.get("delay", 0) or 0)
        if delay > 0:
            time.sleep(delay)

        status = int(response.get("status", 200))
        if "sse" in response:
            self.send_events(status, response)
            return
        if "reply" in response:
            body = completion_body(response["reply"], response.get("usage"))
        else:
            body = response.get("body", "")
        if isinstance(body, str):
            payload, ctype = body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            payload, ctype = json.dumps(body).encode("utf-8"), "application/json"
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (response.get("headers") or {}).items():
                self.send_header(name, str(value))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test); nothing to answer

    def send_events(self, status, response):
        gap = float(response.get("chunk_delay", 0) or 0)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            for name, value in (response.get("headers") or {}).items():
                self.send_header(name, str(value))
            self.end_headers()
            for event in response["sse"]:
                data = event if isinstance(event, str) else json.dumps(event)
                self.wfile.write(("data: " + data + "\n\n").encode("utf-8"))
                self.wfile.flush()
                if gap > 0:
                    time.sleep(gap)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    do_POST = handle_any
    do_GET = handle_any
    do_PUT = handle_any
    do_DELETE = handle_any


def main():
    parser = argparse.ArgumentParser(description="Local OpenAI-compatible chat server for tests.")
    parser.add_argument("--script", required=True)
    parser.add_argument("--record", default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    args = parser.parse_args()

    Handler.script = Script(args.script, args.record)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    # A parent such as a Swift test process may spawn us with signals blocked: unblock them.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    # The record file is flushed per request, so terminating at once loses nothing.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(server.server_address[1], flush=True)
    if args.exit_on_stdin_eof:
        def watch():
            sys.stdin.read()
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()


if __name__ == "__main__":
    main()
