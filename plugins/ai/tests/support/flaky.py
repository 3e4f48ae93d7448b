"""An OpenAI-compatible server that fails first, then passes requests on to the real one:
answers `429` with `Retry-After: 1` to the first `POST`, `503` to the second, and forwards
every later one, and every `GET`, to the upstream given. Prints `listening <port>`, then one
line per request it receives (`POST 429`, `POST 503`, `POST forwarded`, `GET forwarded`)."""

import http.server
import sys
import urllib.request

upstream = sys.argv[1]
seen = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self):
        global seen
        if self.command == "POST":
            seen += 1
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        if self.command == "POST" and seen == 1:
            self.send_response(429)
            self.send_header("retry-after", "1")
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error":{"message":"slow down"}}')
            print("POST 429", flush=True)
            return
        if self.command == "POST" and seen == 2:
            self.send_response(503)
            self.end_headers()
            print("POST 503", flush=True)
            return
        request = urllib.request.Request(upstream + self.path, data=body, method=self.command)
        request.add_header("content-type", "application/json")
        with urllib.request.urlopen(request, timeout=60) as response:
            data = response.read()
            self.send_response(response.status)
            self.send_header("content-type", response.headers.get("content-type", "application/json"))
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        print(self.command, "forwarded", flush=True)

    do_GET = answer
    do_POST = answer

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("listening", server.server_address[1], flush=True)
server.serve_forever()
