"""``tls:`` files of a registry: a private CA and/or a client certificate + key.

Read at render time and checked with the ``cryptography`` library (imported only
when a profile has ``tls``), so a wrong file is an exit-2 problem on the build
machine, not a pull failure on a node.  The CA and client certificate are public;
the client key is a secret: same rules as a file secret (0600, not a symlink).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from generator.errors import Problem
from generator.messages import inputs as M
from generator.profile.model import SecretSpec, TlsSpec
from generator.secrets.file import read_file_secret
from generator.secrets.value import SecretValue

MAX_PEM_BYTES = 64 * 1024


@dataclass(frozen=True)
class TlsMaterial:
    ca: bytes | None = None  # PEM, one or more certificates
    cert: bytes | None = None  # PEM client certificate
    key: SecretValue | None = field(default=None, repr=False)  # PEM client key


def _where(spec: TlsSpec, key: str) -> dict[str, object]:
    return dict(file=spec.at.file, line=spec.at.line, col=spec.at.col, path=f"{spec.at.path}.{key}")


def _read_public(spec: TlsSpec, key: str, path: Path) -> bytes | Problem:
    where = _where(spec, key)
    try:
        if not path.is_file():
            return M.TLS_MISSING.problem(**where, key=key, given=path)  # type: ignore[arg-type]
        if path.stat().st_size > MAX_PEM_BYTES:
            return M.TLS_TOO_LARGE.problem(**where, key=key, given=path, kib=MAX_PEM_BYTES // 1024)  # type: ignore[arg-type]
        return path.read_bytes()
    except OSError as exc:
        return M.TLS_UNREADABLE.problem(**where, key=key, given=path, reason=exc.strerror)  # type: ignore[arg-type]


def _certificates(data: bytes, spec: TlsSpec, key: str) -> list | Problem:
    from cryptography import x509

    where = _where(spec, key)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        return M.TLS_NOT_PEM.problem(**where, key=key)  # type: ignore[arg-type]
    if b"PRIVATE KEY" in data:
        return M.TLS_HAS_KEY.problem(**where, key=key)  # type: ignore[arg-type]
    return certs


def _certificate_file(spec: TlsSpec, key: str, path: Path) -> tuple[bytes, list] | Problem:
    """A public PEM file's bytes and the certificates in it, or the one problem with it."""
    data = _read_public(spec, key, path)
    if isinstance(data, Problem):
        return data
    found = _certificates(data, spec, key)
    return found if isinstance(found, Problem) else (data, found)


def read_tls(spec: TlsSpec) -> tuple[TlsMaterial | None, list[Problem]]:
    """Read and check the files of one ``tls:`` block; all problems at once."""
    problems: list[Problem] = []
    ca = cert = None
    key: SecretValue | None = None
    cert_obj = None
    if spec.ca_file is not None:
        found = _certificate_file(spec, "ca_file", spec.ca_file)
        if isinstance(found, Problem):
            problems.append(found)
        else:
            ca = found[0]
    if spec.cert_file is not None:
        found = _certificate_file(spec, "cert_file", spec.cert_file)
        if isinstance(found, Problem):
            problems.append(found)
        else:
            cert, cert_obj = found[0], found[1][0]
    if spec.key_file is not None:
        value = read_file_secret(SecretSpec(name="tls", source="file", at=spec.at, path=spec.key_file))
        if isinstance(value, Problem):
            problems.append(replace(value, message=value.message.replace("secret file", "key_file"), path=f"{spec.at.path}.key_file"))
        else:
            problem = _check_key(value, cert_obj, spec)
            if problem:
                problems.append(problem)
            else:
                key = value
    if problems:
        return None, problems
    return TlsMaterial(ca=ca, cert=cert, key=key), []


def _check_key(value: SecretValue, cert: object, spec: TlsSpec) -> Problem | None:
    from cryptography.hazmat.primitives import serialization

    where = _where(spec, "key_file")
    try:
        private = serialization.load_pem_private_key(value.reveal(), password=None)
    except TypeError:
        return M.TLS_KEY_ENCRYPTED.problem(**where)  # type: ignore[arg-type]
    except ValueError:
        return M.TLS_KEY_NOT_PEM.problem(**where)  # type: ignore[arg-type]
    if cert is not None:
        pem = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        if private.public_key().public_bytes(*pem) != cert.public_key().public_bytes(*pem):  # type: ignore[attr-defined]
            return M.TLS_KEY_MISMATCH.problem(**where)  # type: ignore[arg-type]
    return None
