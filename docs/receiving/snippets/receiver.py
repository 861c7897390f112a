"""A webhook receiver on 127.0.0.1 for trying hookrelay out: it verifies each request's Standard Webhooks
signature with the subscription's secret, answers 204 (401 when the signature does not verify) and prints
what it received.

    .venv/bin/python docs/receiving/snippets/receiver.py --port 8000 --secret whsec_... [--count 1]
"""

import argparse
import json
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError  # pip install standardwebhooks


def main() -> None:
    parser = argparse.ArgumentParser(description="Receive, verify and print webhooks on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--secret", required=True, help="the subscription's secret (whsec_...)")
    parser.add_argument("--count", type=int, default=0, help="stop after this many verified requests (0: never)")
    parser.add_argument("--timeout", type=float, default=60, help="stop after this many seconds without a request")
    arguments = parser.parse_args()
    webhook = Webhook(arguments.secret)
    verified = 0

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            nonlocal verified
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                webhook.verify(body, dict(self.headers))
            except WebhookVerificationError as error:
                print(f"refused {self.headers.get('webhook-id')}: {error}", flush=True)
                self.send_response(401)
                self.end_headers()
                return
            verified += 1
            self.send_response(204)
            self.end_headers()
            event = json.loads(body)
            test = " (test)" if self.headers.get("X-Hookrelay-Test") else ""
            print(f"verified {event.get('event_name')}{test}, webhook-id {self.headers['webhook-id']}", flush=True)
            print(json.dumps(event, indent=2), flush=True)

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request above is enough

    class Server(HTTPServer):
        timeout = arguments.timeout

        def handle_timeout(self) -> None:
            raise SystemExit(f"no webhook within {arguments.timeout:g} s")

    with Server(("127.0.0.1", arguments.port), Handler) as server:
        print(f"receiving on http://127.0.0.1:{arguments.port}/", flush=True)
        while not arguments.count or verified < arguments.count:
            server.handle_request()


if __name__ == "__main__":
    main()
