"""Where secrets come from: one small object per ``source:`` value, chosen from :data:`SOURCES`.

Each source answers the same questions, so neither profile loading nor the resolver has
per-source branches (in the spirit of kapitan's refs backends, with the Google client
imported only when a Secret Manager secret is really fetched):

* ``keys`` and ``parse(c, block, p, name, profile_path)``: its ``secrets:`` block in a
  profile, checked into a :class:`SecretSpec` (profile loading is handed :data:`SOURCES`
  by generator/profiles.py: the profile layer sits below secrets/ and does not import it);
* ``identity(spec)``: the key under which a run reads the secret once, however many
  registries and profiles name it;
* ``wanted(spec, offline)``: whether a render (or an offline ``validate``) reads it now;
* ``read_many(specs, settings)``: read them all (Secret Manager: concurrently) into a
  value or a located Problem each;
* ``boot_entry(spec, transform, key_check)``: the plan entry the node fetches at first
  boot instead, or None; ``stand_in(spec, offline)``: the empty value an offline check
  uses for a secret it does not fetch, or None.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from generator.errors import Problem
from generator.profile.model import SecretSpec
from generator.secrets.value import SecretValue

if TYPE_CHECKING:
    from generator.profile.checker import Checker

Values = dict[tuple, "SecretValue | Problem"]


@dataclass(frozen=True)
class BootFetch:
    """The VM fetches this secret itself at first boot; no value exists at render time."""

    name: str  # projects/P/secrets/S/versions/V
    transform: str  # how the payload becomes the password: raw | base64 | strip-newline
    endpoint: str | None = None  # Secret Manager API endpoint override (e.g. Private Service Connect)
    key_check: bool = False  # the VM checks the payload looks like a service-account key

    def plan_entry(self) -> dict[str, object]:
        entry: dict[str, object] = {"gcp_secret_manager": self.name, "transform": self.transform}
        if self.endpoint:
            entry["endpoint"] = self.endpoint
        if self.key_check:
            entry["check"] = "service-account-key"
        return entry


class LocalSource:
    """A secret on this machine, read at render time (files, environment variables)."""

    name = ""
    keys: tuple[str, ...] = ()  # the keys of its secrets: block
    remote = False  # read per profile, lazily, even when remote ones are prefetched for a whole run

    def parse(self, c: Checker, block: dict, p: tuple, name: str, profile_path: Path) -> SecretSpec | None:
        raise NotImplementedError

    def identity(self, spec: SecretSpec) -> tuple:
        raise NotImplementedError

    def read(self, spec: SecretSpec) -> SecretValue | Problem:
        raise NotImplementedError

    def wanted(self, spec: SecretSpec, offline: bool) -> bool:
        return True  # local reads are checked offline too (validate)

    def read_many(self, specs: Mapping[tuple, SecretSpec], settings: object | None) -> Values:
        return {key: self.read(spec) for key, spec in specs.items()}

    def boot_entry(self, spec: SecretSpec, transform: str, key_check: bool) -> BootFetch | None:
        return None

    def stand_in(self, spec: SecretSpec, offline: bool) -> SecretValue | None:
        return None


class FileSource(LocalSource):
    name = "file"
    keys = ("source", "path")

    def parse(self, c: Checker, block: dict, p: tuple, name: str, profile_path: Path) -> SecretSpec | None:
        from generator.secrets.file import parse_file_block

        return parse_file_block(c, block, p, name, profile_path)

    def identity(self, spec: SecretSpec) -> tuple:
        return ("file", str(spec.path))

    def read(self, spec: SecretSpec) -> SecretValue | Problem:
        from generator.secrets.file import read_file_secret

        return read_file_secret(spec)


class EnvSource(LocalSource):
    name = "env"
    keys = ("source", "var")

    def parse(self, c: Checker, block: dict, p: tuple, name: str, profile_path: Path) -> SecretSpec | None:
        from generator.secrets.env import parse_env_block

        return parse_env_block(c, block, p, name, profile_path)

    def identity(self, spec: SecretSpec) -> tuple:
        return ("env", spec.var)

    def read(self, spec: SecretSpec) -> SecretValue | Problem:
        from generator.secrets.env import read_env_secret

        return read_env_secret(spec)


class SecretManagerSource:
    """Google Secret Manager: fetched at render time (``fetch: build``) or by the VM at boot."""

    name = "gcp-secret-manager"
    keys = ("source", "name", "project", "secret", "version", "fetch", "credentials_file", "endpoint")
    remote = True

    def parse(self, c: Checker, block: dict, p: tuple, name: str, profile_path: Path) -> SecretSpec | None:
        from generator.secrets.gsm_source import parse_gsm_block  # not the Google client: that loads on a fetch

        return parse_gsm_block(c, block, p, name, profile_path)

    def identity(self, spec: SecretSpec) -> tuple:
        assert spec.gsm is not None
        return ("gsm", spec.gsm.name, spec.gsm.credentials_file, spec.gsm.endpoint)

    def wanted(self, spec: SecretSpec, offline: bool) -> bool:
        return spec.fetch == "build" and not offline

    def read_many(self, specs: Mapping[tuple, SecretSpec], settings: object | None) -> Values:
        # Imported here: the Google client costs ~0.3 s and most renders never need it.
        from generator.secrets.gsm_source import fetch_gsm_specs

        return fetch_gsm_specs(dict(specs), settings)  # type: ignore[arg-type]  # raises SecretUnavailable (exit 1)

    def boot_entry(self, spec: SecretSpec, transform: str, key_check: bool) -> BootFetch | None:
        if spec.fetch != "boot":
            return None
        assert spec.gsm is not None
        return BootFetch(spec.gsm.name, transform, spec.gsm.endpoint, key_check)

    def stand_in(self, spec: SecretSpec, offline: bool) -> SecretValue | None:
        # offline (validate): not fetched; the credential stands in with an empty value (never written anywhere).
        return SecretValue(b"", "Secret Manager, not fetched") if offline else None


SOURCES: Mapping[str, LocalSource | SecretManagerSource] = {s.name: s for s in (FileSource(), EnvSource(), SecretManagerSource())}
