"""Small pieces the namespace harnesses (containerd, registry, cloud-init sandbox) share."""

from __future__ import annotations

import ctypes
import os
import ssl
from typing import Any

CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)


def enter_net_namespace(pid: int) -> None:
    """Move the *calling thread* into the network namespace of ``pid`` (setns)."""
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if _LIBC.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns(net of pid {pid}): {os.strerror(err)}")
    finally:
        os.close(fd)


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
