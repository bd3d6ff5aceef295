"""Stand-ins for devshop, release, web and worker, so devtools.dev can be tested on its own.

Usage: python fake_procs.py http PORT [READY_AFTER] | exit CODE | sleep [SECONDS]
`http` answers every path with 404 except /readyz: 503 for the first READY_AFTER requests, then 200.
"""

from __future__ import annotations

import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(port: int, ready_after: int) -> None:
    seen = {"readyz": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/readyz":
                seen["readyz"] += 1
                ready = seen["readyz"] > ready_after
                body = b'{"status":"ready"}' if ready else b'{"status":"unavailable","error":"warming up"}'
                self.send_response(200 if ready else 503)
            else:
                body = b"{}"
                self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            sys.stdout.write(f"fake {format % args}\n")
            sys.stdout.flush()

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    kind = argv[0]
    if kind == "http":
        say(f"fake http on {argv[1]}")
        serve(int(argv[1]), int(argv[2]) if len(argv) > 2 else 0)
    elif kind == "exit":
        say(f"fake exiting with {argv[1]}")
        return int(argv[1])
    elif kind == "sleep":
        say("fake sleeping")
        time.sleep(float(argv[1]) if len(argv) > 1 else 3600)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
