"""A webhook receiver for otp-serve's tests: every delivery is verified with the official
`standardwebhooks` package, and one JSON line per delivery goes to stdout.

    python receiver.py SECRET MODE     (MODE: ok | fail3 | hang | redirect)

Prints `port <n>` first. `fail3` answers 500 to the first three tries of each webhook-id,
`hang` never answers in time, `redirect` answers 301 to a second address (whose hits it also
reports, as `{"followed": true}`), `ok` answers 204.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

SECRET, MODE = sys.argv[1], sys.argv[2]
WEBHOOK = Webhook(SECRET)
TRIES = {}
LOCK = threading.Lock()


def say(record):
    with LOCK:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()


class Receiver(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        if self.path == "/followed":
            say({"followed": True})
            self.send_response(204)
            self.end_headers()
            return
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        headers = {name: value for name, value in self.headers.items()}
        try:
            payload = WEBHOOK.verify(body, headers)
        except WebhookVerificationError as error:
            say({"verified": False, "error": str(error)})
            self.send_response(400)
            self.end_headers()
            return
        msg_id = headers.get("webhook-id") or headers.get("Webhook-Id")
        with LOCK:
            TRIES[msg_id] = TRIES.get(msg_id, 0) + 1
            tries = TRIES[msg_id]
        status = 204
        if MODE == "fail3" and tries <= 3:
            status = 500
        elif MODE == "hang":
            say({"verified": True, "webhook_id": msg_id, "try": tries, "status": "hang", "payload": payload})
            time.sleep(30)
            return
        elif MODE == "redirect":
            status = 301
        say({"verified": True, "webhook_id": msg_id, "try": tries, "status": status, "payload": payload})
        self.send_response(status)
        if status == 301:
            self.send_header("location", "http://127.0.0.1:%d/followed" % self.server.server_address[1])
        self.send_header("content-length", "0")
        self.end_headers()


server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
server.daemon_threads = True
sys.stdout.write("port %d\n" % server.server_address[1])
sys.stdout.flush()
server.serve_forever()
