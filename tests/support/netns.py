"""Small pieces the namespace harnesses (containerd, registry, cloud-init sandbox) share;
the namespace core itself is testbed/nsbox.py (setns re-exported here)."""

from __future__ import annotations

import ssl
from typing import Any

from testbed.nsbox import CLONE_NEWNET, enter_net_namespace

__all__ = ["CLONE_NEWNET", "HandshakeInWorker", "enter_net_namespace"]


class HandshakeInWorker:
    """Mix into a ThreadingHTTPServer that sets ``self._tls``: the TLS handshake runs on
    the per-connection thread, so one stuck client cannot block accept()."""

    _tls: ssl.SSLContext

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request = self._tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)  # type: ignore[misc]
