"""A tiny HTTP server that answers every GET with its own name (stdlib only, starts in well under a second).

The two backends of the Gateway routing probe (`steps/provision/active_gateway.py`) run it from kaic's image:
`python -m kaic.whoami --name NAME --port PORT`. Whatever the path, the body is the name and a newline, so
whoever sends a request through a route can tell which backend answered it.
"""

from __future__ import annotations

import argparse
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEADER = "X-Kaic-Backend"


def make_server(name: str, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """A server bound to (host, port) that answers `name`; port 0 picks a free one (`server_address`)."""
    body = f"{name}\n".encode()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, with_body: bool) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header(HEADER, name)
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(True)

        def do_HEAD(self) -> None:
            self._answer(False)

        def log_message(self, format: str, *args: object) -> None:
            return  # one line per request would flood the pod's log under the probe's load

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kaic.whoami", description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="what every answer says")
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default: every interface)")
    args = parser.parse_args(argv)
    if not args.name.strip() or not 0 < args.port < 65536:
        parser.error(f"--name {args.name!r} --port {args.port}: need a non-empty name and a port in 1..65535")
    try:
        server = make_server(args.name, args.port, args.host)
    except OSError as exc:
        print(f"kaic.whoami: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"kaic.whoami: {args.name} listening on {args.host}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
