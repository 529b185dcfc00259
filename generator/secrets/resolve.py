"""Secrets stage: turn each registry's auth into the username/password the node needs.

One :class:`SecretResolver` serves a whole run, so a secret named by many
registries or profiles is read (or fetched from Secret Manager) once, and distinct
Secret Manager secrets are fetched together, concurrently.  Nothing is cached on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from generator.errors import InvalidInput, Problem, RuntimeFailure
from generator.messages import inputs as M
from generator.node.bootfetch import password_from_payload  # the node's rule, at render time too
from generator.node.errors import FetchFailure
from generator.profile.model import VM_IDENTITY, Profile, Registry, SecretSpec
from generator.core.sakey import check_service_account_key
from generator.secrets.sources import SOURCES, BootFetch
from generator.secrets.tls import TlsMaterial, read_tls
from generator.secrets.value import SecretValue


@dataclass(frozen=True)
class Credential:
    host: str
    username: str
    secret_name: str
    password: SecretValue | None = field(default=None, repr=False)
    boot: BootFetch | None = None
    mirror_for: str | None = None  # see Registry: this host serves that registry's images
    path: str | None = None  # the mirror's path prefix (override_path)
    tls: TlsMaterial | None = None  # CA / client certificate contents for the node
    identity: str | None = None  # "gcp-vm": the node's metadata server gives the password (a token)

    @property
    def holds_secret(self) -> bool:
        return self.password is not None or (self.tls is not None and self.tls.key is not None)


def _transform_for(registry: Registry) -> str:
    if registry.auth.type == "basic":
        return "strip-newline"
    return "base64" if registry.auth.username == "_json_key_base64" else "raw"


class SecretResolver:
    """Per-run secret cache and fetcher (no global state: create one per run)."""

    def __init__(self, gsm_settings: object | None = None, *, offline: bool = False) -> None:
        self._values: dict[tuple, SecretValue | Problem] = {}
        self._gsm_settings = gsm_settings  # GsmSettings; typed loosely to keep imports lazy
        # offline (validate): build-time Secret Manager secrets are not fetched; their
        # credentials stand in with an empty value (never written anywhere).
        self._offline = offline

    @staticmethod
    def _identity(spec: SecretSpec) -> tuple:
        return SOURCES[spec.source].identity(spec)

    def prefetch_remote(self, profiles: list[Profile]) -> None:
        """Fetch build-time Secret Manager secrets for all profiles at once (files/env stay lazy)."""
        self.prefetch(profiles, remote_only=True)

    def prefetch(self, profiles: list[Profile], remote_only: bool = False) -> None:
        """Read every build-time secret the profiles use, each source's at once (Secret Manager: concurrently)."""
        wanted: dict[str, dict[tuple, SecretSpec]] = {}
        for profile in profiles:
            for reg in profile.registries:
                if reg.auth.secret is None:
                    continue  # gcp-vm-identity: nothing to read
                spec = profile.secrets[reg.auth.secret]
                source = SOURCES[spec.source]
                key = source.identity(spec)
                if key in self._values or (remote_only and not source.remote) or not source.wanted(spec, self._offline):
                    continue
                wanted.setdefault(spec.source, {}).setdefault(key, spec)
        for name, specs in wanted.items():
            self._values.update(SOURCES[name].read_many(specs, self._gsm_settings))

    def credentials(self, profile: Profile) -> list[Credential]:
        """Credentials for every registry of ``profile``; raises InvalidInput with all problems."""
        self.prefetch([profile])
        problems: list[Problem] = []
        creds: list[Credential] = []
        for reg in profile.registries:
            if reg.auth.type == VM_IDENTITY:
                creds.append(Credential(reg.host, reg.auth.username, "", identity="gcp-vm"))
                continue
            assert reg.auth.secret is not None
            spec = profile.secrets[reg.auth.secret]
            transform = _transform_for(reg)
            source = SOURCES[spec.source]
            boot = source.boot_entry(spec, transform, reg.auth.type == "gcp-service-account")
            if boot is not None:
                creds.append(_routed(Credential(reg.host, reg.auth.username, spec.name, boot=boot), reg, problems))
                continue
            unfetched = source.stand_in(spec, self._offline)
            if unfetched is not None:
                creds.append(_routed(Credential(reg.host, reg.auth.username, spec.name, unfetched), reg, problems))
                continue
            value = self._values[self._identity(spec)]
            if isinstance(value, Problem):
                # Cached from whichever profile read it first: point at this profile's spec.
                here = replace(value, file=spec.at.file, line=spec.at.line, col=spec.at.col, path=spec.at.path + value.path[value.path.rfind("."):] if "." in value.path else spec.at.path)
                if here not in problems:
                    problems.append(here)
                continue
            found = check_payload(value, reg, spec)
            if found:
                problems.extend(found)
                continue
            password = password_from_payload(value.reveal(), transform)
            creds.append(_routed(Credential(reg.host, reg.auth.username, spec.name, SecretValue(password.encode("utf-8"), value.origin)), reg, problems))
        if problems:
            raise InvalidInput(problems)
        return creds


def offline_credentials(profile: Profile, resolver: SecretResolver | None = None) -> tuple[list[Credential], list[Problem]]:
    """Credentials as far as this machine can tell without network, or the problems found.

    Files, env and TLS files are read and checked; Secret Manager secrets are not
    fetched.  For ``validate``, and for profiles whose other errors stop the render: a
    key error is reported with them, not one run later.
    """
    try:
        return (resolver or SecretResolver(offline=True)).credentials(profile), []
    except InvalidInput as exc:
        return [], list(exc.problems)
    except RuntimeFailure as exc:  # e.g. an unreadable key file: reported with the rest
        return [], [M.SECRET_UNAVAILABLE.problem(str(profile.file), detail=exc.cause, fix=exc.fix)]


def local_problems(profile: Profile, resolver: SecretResolver | None = None) -> list[Problem]:
    """The problems of :func:`offline_credentials`."""
    return offline_credentials(profile, resolver)[1]


def _routed(cred: Credential, reg: Registry, problems: list[Problem]) -> Credential:
    """Attach the registry's mirror route and TLS file contents (read now, checked as PEM)."""
    if reg.mirror_for is None and reg.tls is None:
        return cred
    tls = None
    if reg.tls is not None:
        tls, found = read_tls(reg.tls)
        problems.extend(found)
    return replace(cred, mirror_for=reg.mirror_for, path=reg.path, tls=tls)


def check_payload(value: SecretValue, reg: Registry, spec: SecretSpec) -> list[Problem]:
    """Content checks: representable text, and a usable key for service-account auth."""
    where = dict(file=reg.auth.at.file, line=reg.auth.at.line, col=reg.auth.at.col, path=reg.auth.at.path)
    raw = value.reveal()
    label = f"secret '{spec.name}' ({value.origin})"
    if not raw:
        return [M.SECRET_EMPTY.problem(**where, label=label)]
    if reg.auth.type == "basic" or reg.auth.username == "_json_key":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return [M.SECRET_NOT_UTF8.problem(**where, label=label)]
        if "\x00" in text:
            return [M.SECRET_NUL.problem(**where, label=label)]
        if reg.auth.type == "basic":
            try:
                password_from_payload(raw, "strip-newline")
            except FetchFailure:
                # The trailing newline is dropped (like docker login --password-stdin): nothing would be left.
                return [M.SECRET_ONLY_NEWLINE.problem(**where, label=label)]
    if reg.auth.type == "gcp-service-account":
        return [
            M.SERVICE_ACCOUNT_KEY.problem(**where, label=label, detail=f.message, fix=f.fix)
            for f in check_service_account_key(raw)
        ]
    return []
