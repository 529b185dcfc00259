"""The validated profile: plain frozen dataclasses, no behaviour beyond lookups."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROFILE_VERSION = 1

AUTH_TYPES = ("gcp-service-account", "basic", "gcp-vm-identity")
# gcp-vm-identity: no secret at all; the node asks its metadata server for the VM's
# service-account access token (about 1 hour) and Artifact Registry accepts it as
# this username.  Only a credential provider can serve it (fetched per pull).
VM_IDENTITY = "gcp-vm-identity"
VM_IDENTITY_USERNAME = "oauth2accesstoken"
GCP_USERNAMES = ("_json_key_base64", "_json_key")
FETCH_MODES = ("build", "boot")
CLOUDS = ("gce", "aws", "azure", "none")
COMPRESS_MODES = ("auto", "always", "never")
# Where the node programs come from: user-data (any image), an image built with
# out/NAME/packer/, or a URL user-data fetches the program from (checked by SHA-256).
PROGRAM_SOURCES = ("user-data", "image", "url")
DEFAULT_PACKER_SOURCES = ("source.googlecompute.golden",)


@dataclass(frozen=True)
class Located:
    """Where a value sits in its profile file (for messages raised after loading)."""

    file: str
    line: int
    col: int
    path: str


@dataclass(frozen=True)
class GsmSpec:
    project: str
    secret: str
    version: str
    credentials_file: str | None = None
    endpoint: str | None = None

    @property
    def name(self) -> str:
        return f"projects/{self.project}/secrets/{self.secret}/versions/{self.version}"


@dataclass(frozen=True)
class SecretSpec:
    name: str
    source: str
    at: Located
    path: Path | None = None  # file source, resolved against the profile folder
    var: str | None = None  # env source
    gsm: GsmSpec | None = None
    fetch: str = "build"


@dataclass(frozen=True)
class AuthSpec:
    type: str
    secret: str | None  # None only for gcp-vm-identity (no secret exists)
    username: str
    at: Located


@dataclass(frozen=True)
class TlsSpec:
    """Files (on the machine running regauth) that make a registry's TLS work on the node."""

    at: Located
    ca_file: Path | None = None  # private CA that signed the registry's certificate
    cert_file: Path | None = None  # client certificate (mutual TLS) ...
    key_file: Path | None = None  # ... and its key (a secret: 0600, never a symlink)


@dataclass(frozen=True)
class Registry:
    host: str
    auth: AuthSpec
    at: Located
    # A mirror: image references name ``mirror_for`` (e.g. docker.io) but the node
    # contacts ``host`` instead, so credentials stay keyed by ``host``.
    mirror_for: str | None = None
    path: str | None = None  # the mirror's path prefix, used as is (override_path), e.g. /v2/PROJECT/REPO
    tls: TlsSpec | None = None


@dataclass(frozen=True)
class PackerOptions:
    """``output.packer``: the golden-image snippet.

    ``sources`` is written literally into the build block because Packer 1.6 rejects
    variables there.  ``bake_secret`` is three-valued on purpose: None (not said) bakes
    nothing secret and warns; False says the same thing on purpose, without the warning.
    """

    sources: tuple[str, ...] = DEFAULT_PACKER_SOURCES
    bake_secret: bool | None = None
    at: Located | None = None  # where output.packer is; None: the profile does not use Packer


@dataclass(frozen=True)
class OutputOptions:
    cloud: str = "gce"  # whose user-data size limit applies
    compress: str = "auto"  # gzip: auto (only when over the limit), always, never
    packer: PackerOptions = field(default_factory=PackerOptions)
    # "image": the image was built with out/NAME/packer/, so user-data carries only the
    # plan (1.3 KB with fetch: boot, ~4 KB with a key, instead of ~20 KB more of program).
    program: str = "user-data"
    # "url": where user-data fetches regauth-apply from at first boot (any image; the
    # program's SHA-256 travels in user-data, so the server needs no trust).
    program_url: str | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    file: Path
    registries: tuple[Registry, ...]
    secrets: dict[str, SecretSpec]
    targets: dict[str, Any]  # target name -> that target module's options dataclass
    output: OutputOptions = field(default_factory=OutputOptions)
    description: str = ""
    extra: dict[str, object] = field(default_factory=dict)
    refresh: int | None = None  # seconds between re-fetch + re-apply on the node (systemd timer)
