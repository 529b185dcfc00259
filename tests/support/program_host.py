"""An HTTP handler that serves one body for every GET: the program host of
``output.program: url`` (tests/unit/test_program_url.py on loopback, and inside the
cloud-init sandbox through ``SandboxService``)."""

from __future__ import annotations

import http.server


def serving_handler(body: bytes, asked: list[str], status: int = 200) -> type[http.server.BaseHTTPRequestHandler]:
    """A handler answering every GET with ``status`` and ``body``; each path asked is appended to ``asked``."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            asked.append(self.path)
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler
