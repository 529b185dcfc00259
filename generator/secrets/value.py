"""A secret payload that never shows itself in logs, reprs or tracebacks."""

from __future__ import annotations


class SecretValue:
    """Bytes of a secret.  ``repr``/``str`` are redacted; use :meth:`reveal` to read.

    Kept deliberately small: no ``__eq__`` on the payload (so assertion rewriting in
    tests and logging of comparisons cannot print it) and no pickling.
    """

    __slots__ = ("_data", "origin")

    def __init__(self, data: bytes, origin: str):
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("SecretValue holds bytes")
        self._data = bytes(data)
        self.origin = origin  # human description of where it came from, never the value

    def reveal(self) -> bytes:
        return self._data

    def text(self) -> str:
        """The payload as text; raises UnicodeDecodeError (callers turn it into a Problem)."""
        return self._data.decode("utf-8")

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"SecretValue(<redacted {len(self._data)} bytes from {self.origin}>)"

    __str__ = __repr__

    def __reduce__(self):  # pragma: no cover - defensive
        raise TypeError("secret values are not picklable")
