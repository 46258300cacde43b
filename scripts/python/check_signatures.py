"""Independent receivers check Herald's signatures.

Starts the real `herald` binary and a plain Python HTTP receiver, registers
webhooks, publishes events, and verifies every delivery with the
`standardwebhooks` package from PyPI, exactly as a receiver would.

Usage: check_signatures.py PATH_TO_HERALD_BINARY
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

TOKEN = "signature-check-token"
EVENTS = 25
PATIENCE_S = 60


class Recorder(BaseHTTPRequestHandler):
    received = []
    lock = threading.Lock()

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        with Recorder.lock:
            Recorder.received.append((self.path, dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def start_receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def start_herald(binary, data_dir):
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir,
         "--allow-cidr", "127.0.0.0/8"],
        env={**os.environ, "HERALD_ADMIN_TOKEN": TOKEN, "RUST_LOG": "warn"},
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit("herald exited before listening")
        if "listening on http://" in line:
            addr = line.split("listening on http://", 1)[1].split()[0]
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, "http://" + addr
    raise SystemExit("herald did not start in time")


def api(base, method, path, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + TOKEN)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def main():
    binary = sys.argv[1]
    receiver = start_receiver()
    url = "http://127.0.0.1:%d" % receiver.server_address[1]
    with tempfile.TemporaryDirectory() as data_dir:
        proc, base = start_herald(binary, data_dir)
        try:
            generated = api(base, "POST", "/api/v1/webhooks", {
                "name": "generated secret", "url": url + "/generated", "event_types": ["check:*"]})
            plain = api(base, "POST", "/api/v1/webhooks", {
                "name": "plain secret", "url": url + "/plain", "event_types": ["check:*"],
                "secret": "plain secret ünïcode"})
            # A whsec_ secret keys with its base64-decoded bytes; any other with its UTF-8 bytes.
            verifiers = {
                "/generated": Webhook(generated["secret"]),
                "/plain": Webhook(plain["secret"].encode("utf-8")),
            }
            for i in range(EVENTS):
                api(base, "POST", "/api/v1/events", {
                    "type": "check:signed", "payload": {"i": i, "text": "héllo ✓", "list": [1, 2.5, None]}})
            expected = EVENTS * len(verifiers)
            deadline = time.monotonic() + PATIENCE_S
            while len(Recorder.received) < expected and time.monotonic() < deadline:
                time.sleep(0.1)
            passed = failed = 0
            for path, headers, body in list(Recorder.received):
                try:
                    verifiers[path].verify(body, {k.lower(): v for k, v in headers.items()})
                    passed += 1
                except Exception as exc:  # the package raises its own verification error
                    failed += 1
                    print("FAILED %s: %s" % (path, exc))
            failed += max(0, expected - passed - failed)
            print("standardwebhooks: %d passed, %d failed" % (passed, failed))
            return 0 if failed == 0 and passed == expected else 1
        finally:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
