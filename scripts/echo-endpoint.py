#!/usr/bin/env python3
"""A webhook endpoint for trying Herald on one machine: it prints every
delivery it gets (event type, id and body) and answers 204.

    python3 scripts/echo-endpoint.py [PORT]    (default 9000, on 127.0.0.1)
"""
import http.server
import sys


class Endpoint(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        event_type = self.headers.get("x-herald-event-type", "?")
        event_id = self.headers.get("webhook-id", "?")
        print(f"{event_type} {event_id} {body}", flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass  # the deliveries themselves are printed above


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    server = http.server.HTTPServer(("127.0.0.1", port), Endpoint)
    print(f"listening on http://127.0.0.1:{port}/", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
