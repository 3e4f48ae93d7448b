"""A webhook receiver for tests: verifies every delivery with PyPI's `standardwebhooks`
(the Standard Webhooks reference library), answers as each path's script says, and
reports what it received.

Control (JSON bodies):
  POST /_secrets  {"/path": ["whsec_...", ...]}   secrets to verify that path's deliveries with
  POST /_script   {"/path": [{"status": 500}, {"status": 429, "retry_after": "1"},
                             {"status": 200, "delay": 30}]}
                  answers in turn; the last repeats
  GET  /_log      every delivery: path, headers, body, and whether each secret verified it

Prints `port=<n>` on its first line of output.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

lock = threading.Lock()
secrets = {}
scripts = {}
log = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/_log":
            with lock:
                body = json.dumps(log).encode()
            self.answer(200, body, [("Content-Type", "application/json")])
        else:
            self.answer(404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if self.path == "/_secrets":
            with lock:
                secrets.update(json.loads(body))
            return self.answer(204)
        if self.path == "/_script":
            with lock:
                scripts.update(json.loads(body))
            return self.answer(204)
        headers = {name.lower(): value for name, value in self.headers.items()}
        verified = []
        for secret in secrets.get(self.path, []):
            try:
                Webhook(secret).verify(body, headers)
                verified.append(True)
            except WebhookVerificationError as error:
                verified.append(str(error) or "verification failed")
        with lock:
            script = scripts.get(self.path) or [{"status": 200}]
            step = script.pop(0) if len(script) > 1 else script[0]
            log.append(
                {
                    "path": self.path,
                    "headers": headers,
                    "body": body.decode("utf-8", "replace"),
                    "verified": verified,
                    "received_at": time.time(),
                    "answered": step.get("status", 200),
                }
            )
        if step.get("delay"):
            time.sleep(step["delay"])
        extra = []
        if "retry_after" in step:
            extra.append(("Retry-After", step["retry_after"]))
        reply = step.get("body", "ok").encode()
        try:
            self.answer(step.get("status", 200), reply, extra)
        except (BrokenPipeError, ConnectionResetError):
            pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(f"port={server.server_address[1]}", flush=True)
server.serve_forever()
