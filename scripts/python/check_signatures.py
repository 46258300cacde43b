"""Independent receivers check Herald's signatures.

Starts the real `herald` binary and a plain Python HTTP receiver, registers
webhooks, publishes events, and verifies every delivery exactly as a receiver
would:

- Standard Webhooks signatures with the `standardwebhooks` package from PyPI
  (skipped, saying so, when the package is not installed);
- the native hex signatures of the SonarQube family (`X-Sonar-Webhook-HMAC-SHA256`)
  and the Sourcegraph family (`X-Sourcegraph-Webhook-Signature`) with Python's
  own `hmac`: lower-case hex HMAC-SHA256 of the raw body, keyed with the
  secret's UTF-8 bytes, as SonarQube's Java sample and Sourcegraph compute it.

Usage: check_signatures.py PATH_TO_HERALD_BINARY
Prints "N passed, M failed" last; exits non-zero on any failure.
"""

import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from standardwebhooks.webhooks import Webhook
except ImportError:
    Webhook = None

TOKEN = "signature-check-token-0123456789abcdef"  # 32+ characters, as Herald requires
EVENTS = 25
PATIENCE_S = 60
SONAR_SECRET = "sonar sécret ✓"
SOURCEGRAPH_SECRET = "sourcegraph shared secret"


class Recorder(BaseHTTPRequestHandler):
    received = []
    lock = threading.Lock()

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        with Recorder.lock:
            Recorder.received.append((self.path, headers, body))
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


def received_on(path):
    with Recorder.lock:
        return [(h, b) for p, h, b in Recorder.received if p == path]


def wait_for(count):
    deadline = time.monotonic() + PATIENCE_S
    while len(Recorder.received) < count and time.monotonic() < deadline:
        time.sleep(0.1)


def register_standard_webhooks(base, url):
    """Two webhooks on a custom type: a generated whsec_ secret and a plain one."""
    api(base, "PUT", "/api/v1/event-types/check:signed", {
        "description": "signature cross-check", "schema": {"type": "object"}, "example": {}})
    generated = api(base, "POST", "/api/v1/webhooks", {
        "name": "generated secret", "url": url + "/generated", "event_types": ["check:*"]})
    plain = api(base, "POST", "/api/v1/webhooks", {
        "name": "plain secret", "url": url + "/plain", "event_types": ["check:*"],
        "secret": "plain secret ünïcode"})
    # A whsec_ secret keys with its base64-decoded bytes; any other with its UTF-8 bytes.
    return {
        "/generated": Webhook(generated["secret"]),
        "/plain": Webhook(plain["secret"].encode("utf-8")),
    }


def check_standard_webhooks(verifiers):
    passed = failed = 0
    for path, verifier in verifiers.items():
        deliveries = received_on(path)
        for headers, body in deliveries:
            try:
                verifier.verify(body, headers)
                passed += 1
            except Exception as exc:  # the package raises its own verification error
                failed += 1
                print("FAILED standardwebhooks %s: %s" % (path, exc))
        failed += max(0, EVENTS - len(deliveries))
    print("standardwebhooks: %d passed, %d failed" % (passed, failed))
    return passed, failed


def register_native_webhooks(base, url):
    api(base, "POST", "/api/v1/webhooks", {
        "name": "sonarqube", "url": url + "/sonarqube", "event_types": ["sonarqube:analysis"],
        "secret": SONAR_SECRET})
    api(base, "POST", "/api/v1/webhooks", {
        "name": "sourcegraph", "url": url + "/sourcegraph", "event_types": ["changeset:*"],
        "secret": SOURCEGRAPH_SECRET})


def publish_native_events(base):
    analysis = api(base, "GET", "/api/v1/event-types/sonarqube:analysis")["example"]
    api(base, "POST", "/api/v1/events", {
        "type": "sonarqube:analysis", "payload": analysis,
        "properties": {"sonar.analysis.buildNumber": "12345", "ci.runner": "not merged"}})
    changeset = api(base, "GET", "/api/v1/event-types/changeset:update")["example"]
    api(base, "POST", "/api/v1/events", {"type": "changeset:update", "payload": changeset})
    return analysis["project"]["key"]


def hex_hmac(secret, body):
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def check_native(project_key):
    """Each delivery's hex signature, recomputed here, plus the headers and the
    properties merge a SonarQube or Sourcegraph receiver relies on."""
    checks = []
    for headers, body in received_on("/sonarqube"):
        payload = json.loads(body)
        checks += [
            ("SonarQube X-Sonar-Webhook-HMAC-SHA256",
             hmac.compare_digest(headers.get("x-sonar-webhook-hmac-sha256", ""), hex_hmac(SONAR_SECRET, body))),
            ("SonarQube X-SonarQube-Project", headers.get("x-sonarqube-project") == project_key),
            ("SonarQube sonar.analysis.* properties merged",
             payload.get("properties") == {"sonar.analysis.buildNumber": "12345"}),
        ]
    for headers, body in received_on("/sourcegraph"):
        checks += [
            ("Sourcegraph X-Sourcegraph-Webhook-Signature",
             hmac.compare_digest(headers.get("x-sourcegraph-webhook-signature", ""),
                                 hex_hmac(SOURCEGRAPH_SECRET, body))),
            ("Sourcegraph X-Sourcegraph-Webhook-Event-Type",
             headers.get("x-sourcegraph-webhook-event-type") == "changeset:update"),
        ]
    passed = sum(1 for _, ok in checks if ok)
    failed = len(checks) - passed
    for name, ok in checks:
        if not ok:
            print("FAILED %s" % name)
    # One delivery of each family, each with its checks.
    expected = 5
    failed += max(0, expected - len(checks))
    print("hex signatures (Python hmac): %d passed, %d failed" % (passed, failed))
    return passed, failed


def main():
    binary = sys.argv[1]
    receiver = start_receiver()
    url = "http://127.0.0.1:%d" % receiver.server_address[1]
    with tempfile.TemporaryDirectory() as data_dir:
        proc, base = start_herald(binary, data_dir)
        try:
            expected = 2
            verifiers = {}
            if Webhook is None:
                print("SKIP: standardwebhooks is not installed; only the hex signatures are checked")
            else:
                verifiers = register_standard_webhooks(base, url)
                for i in range(EVENTS):
                    api(base, "POST", "/api/v1/events", {
                        "type": "check:signed", "payload": {"i": i, "text": "héllo ✓", "list": [1, 2.5, None]}})
                expected += EVENTS * len(verifiers)
            register_native_webhooks(base, url)
            project_key = publish_native_events(base)
            wait_for(expected)
            passed = failed = 0
            if verifiers:
                p, f = check_standard_webhooks(verifiers)
                passed, failed = passed + p, failed + f
            p, f = check_native(project_key)
            passed, failed = passed + p, failed + f
            print("%d passed, %d failed" % (passed, failed))
            return 0 if failed == 0 and passed > 0 else 1
        finally:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
