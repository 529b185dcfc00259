"""A CRI ``PullImage`` client: grpcio only, protobuf encoded by hand.

Why: the CRI image service is the path kubelet uses and the only one that
applies ``registry.configs.*.auth`` (``ctr`` ignores it); Debian has no crictl,
and generated CRI stubs would pin one API version.  The two messages we need
are tiny: PullImageRequest{1: ImageSpec{1: image}} -> PullImageResponse{1: ref}.
"""

from __future__ import annotations

from pathlib import Path

import grpc

SERVICES = ("runtime.v1", "runtime.v1alpha2")  # 2.x serves only v1; 1.6/1.7 both
_OPTIONS = [("grpc.enable_http_proxy", 0)]


class PullError(Exception):
    """containerd refused the pull; ``details`` is containerd's own message."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_pull_request(image: str, auth: tuple[str, str] | None = None) -> bytes:
    """PullImageRequest{image: ImageSpec{image}, auth: AuthConfig{username, password}}.

    Without ``auth`` containerd's config must supply credentials; with it the pull
    carries them as kubelet does with a credential provider's answer (field 2;
    AuthConfig fields 1 username, 2 password).
    """
    request = _field(1, _field(1, image.encode()))
    if auth is not None:
        request += _field(2, _field(1, auth[0].encode()) + _field(2, auth[1].encode()))
    return request


def decode_pull_response(data: bytes) -> str:
    """image_ref (field 1) of a PullImageResponse; other fields are skipped."""
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 2:
            size, i = _read_varint(data, i)
            if number == 1:
                return data[i : i + size].decode()
            i += size
        elif wire == 0:
            _, i = _read_varint(data, i)
        else:
            raise ValueError(f"unexpected wire type {wire} in PullImageResponse")
    return ""


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def wait_ready(socket_path: Path, timeout: float = 10) -> None:
    """Block until the gRPC server on ``socket_path`` accepts connections."""
    with grpc.insecure_channel(f"unix://{socket_path}", options=_OPTIONS) as channel:
        grpc.channel_ready_future(channel).result(timeout=timeout)


def pull_image(socket_path: Path, image: str, timeout: float = 60, auth: tuple[str, str] | None = None) -> str:
    """Pull ``image`` through containerd's CRI; return the image ref (image id).

    Tries ``runtime.v1`` then ``runtime.v1alpha2``.  Raises :class:`PullError`
    with containerd's message (e.g. ``failed to fetch oauth token ... 401``).
    """
    request = encode_pull_request(image, auth)
    unimplemented = []
    with grpc.insecure_channel(f"unix://{socket_path}", options=_OPTIONS) as channel:
        for service in SERVICES:
            call = channel.unary_unary(f"/{service}.ImageService/PullImage")
            try:
                return decode_pull_response(call(request, timeout=timeout))
            except grpc.RpcError as err:
                code, details = err.code(), err.details() or ""  # type: ignore[attr-defined]
                if code != grpc.StatusCode.UNIMPLEMENTED:
                    raise PullError(code, details) from None
                unimplemented.append(f"{service}: {details}")
    # Both missing: the CRI plugin failed to load (containerd keeps running); its log says why.
    raise PullError(grpc.StatusCode.UNIMPLEMENTED, "no CRI image service (CRI plugin not loaded?): "
                    + "; ".join(unimplemented))  # fmt: skip
