"""kubelet: node-wide ``/var/lib/kubelet/config.json`` and/or a CredentialProviderConfig.

config.json: kubelet looks credentials up itself (its keyring re-reads the file
when its 5-minute cache expires: no restart) and sends them over CRI, where they
override the runtime's own config.  Unlike containerd, kubelet matches keys as
globs, one DNS label per ``*`` (``*-docker.pkg.dev`` covers europe-docker.pkg.dev
and us-docker.pkg.dev, not ``*.pkg.dev``).  A profile says so explicitly, per
target, because only kubelet understands it::

    kubelet:
      match: {"*-docker.pkg.dev": europe-docker.pkg.dev}   # glob -> whose credentials

Registry hosts stay exact (every other target needs them so).

credential_provider (``type: regauth``): regauth's own provider,
``/usr/local/sbin/regauth-credential-provider`` (shipped with the plan), answers
kubelet for every registry of the profile (``matchImages``: each host, port
included) from credentials kept in a root-only file (``/etc/regauth/credential-provider.json``,
0600), from Secret Manager at request time (``fetch: boot`` secrets, cached), or
keyless (``gcp-vm-identity``: the metadata server's token).  Nothing goes into the
runtime's config; kubelet hands the credentials to CRI ``PullImage``.  The apply
step also writes kubelet's two flags where the node's distribution reads them
(``kubelet_flags``: auto, kubeadm, microk8s, k3s, rke2 or none).

credential_provider (``type: gcp``): a kubelet.config.k8s.io/v1
CredentialProviderConfig for Google's ``auth-provider-gcp`` (cloud-provider-gcp),
the config GKE nodes use.  It stores no key at all: the plugin gets a token for the
VM's service account from the metadata server.  regauth writes the config; the
binary must be in ``bin_dir`` and kubelet must run with
``--image-credential-provider-config`` and ``--image-credential-provider-bin-dir``
(the apply step checks the binary and prints both flags).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from generator.messages import inputs as M
from generator.profile.checker import Checker, kind_of
from generator.profile.model import Registry
from generator.secrets.resolve import Credential
from generator.targets import common
from generator.targets.base import NodeFile, Step

UNITS = ("kubelet.service",)
OPTION_KEYS = ("config_json", "match", "credential_provider", "restart", "if_missing")
REQUIRED_KEYS: tuple[str, ...] = ()
EXAMPLE = 'kubelet:\n  match: {"*-docker.pkg.dev": europe-docker.pkg.dev}'
CONFIG_JSON = "/var/lib/kubelet/config.json"
PROVIDER_KEYS = ("type", "config", "bin_dir", "match_images", "cache_duration", "kubelet_flags")
PROVIDER_TYPES = ("gcp", "regauth")
REGAUTH_PROVIDER = "regauth-credential-provider"
REGAUTH_BIN_DIR = "/usr/local/sbin"
# Root-only (0600) file the provider answers from; written by the kubelet step.
PROVIDER_STORE = "/etc/regauth/credential-provider.json"
REGAUTH_CACHE_DURATION = "5m"
# Where kubelet's flags go; auto: the apply step looks at the node (MicroK8s, k3s, RKE2, else kubeadm).
KUBELET_FLAGS = ("auto", "kubeadm", "microk8s", "k3s", "rke2", "none")
PROVIDER_CONFIG = "/etc/kubernetes/credential-provider-config.yaml"
PROVIDER_BIN_DIR = "/usr/local/bin"
GCP_PROVIDER = "auth-provider-gcp"
# What GKE nodes use (kubernetes cluster/gce configure.sh, configure-auth-provider-gcp).
GCP_MATCH_IMAGES = ("container.cloud.google.com", "gcr.io", "*.gcr.io", "*.pkg.dev")
GCP_ARGS = ("get-credentials", "--v=3")
DOCKER_HUB_HOST = "registry-1.docker.io"
HUB_KEY = "https://index.docker.io/v1/"
# kubelet matchImages / config.json key: glob labels, optional port, optional path (no glob there).
_LABEL = r"[a-z0-9*]([a-z0-9*-]*[a-z0-9*])?"
MATCH_RE = re.compile(rf"^{_LABEL}(\.{_LABEL})*(:[0-9]{{1,5}})?(/[A-Za-z0-9._/-]+)?$")
_DURATION_RE = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")


@dataclass(frozen=True)
class Provider:
    type: str = "gcp"
    config: str = PROVIDER_CONFIG
    bin_dir: str = PROVIDER_BIN_DIR
    match_images: tuple[str, ...] | None = GCP_MATCH_IMAGES  # None (regauth): the registry hosts
    cache_duration: str = "1m"
    kubelet_flags: str = "none"

    @property
    def name(self) -> str:
        return REGAUTH_PROVIDER if self.type == "regauth" else GCP_PROVIDER

    def entry(self, hosts: list[str] | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "apiVersion": "credentialprovider.kubelet.k8s.io/v1",
            "matchImages": list(self.match_images if self.match_images is not None else hosts or []),
            "defaultCacheDuration": self.cache_duration,
        }
        if self.type == "gcp":
            entry["args"] = list(GCP_ARGS)
        return entry


def serves_tokens(target: "KubeletTarget") -> bool:
    """Only regauth's provider (without a static config.json) can hand out a
    short-lived token: it is asked at each pull, config.json is written once."""
    return target.provider is not None and target.provider.type == "regauth" and target.config_json is None


@dataclass(frozen=True)
class KubeletTarget:
    config_json: str | None = CONFIG_JSON
    match: dict[str, str] = field(default_factory=dict)  # glob -> registry host
    provider: Provider | None = None
    restart: str = "never"
    if_missing: str = "write"


def _match_problem(pattern: object) -> str | None:
    if not isinstance(pattern, str) or not pattern:
        return f"a pattern must be a non-empty string, not {kind_of(pattern)}"
    if "://" in pattern:
        return f"'{pattern}' has a scheme; kubelet patterns are host[:port][/path]"
    if not MATCH_RE.match(pattern):
        return f"'{pattern}' is not a kubelet image pattern (globs only in host labels, one label per '*')"
    return None


def parse(c: Checker, m: dict, p: tuple) -> KubeletTarget | None:
    # With regauth's own provider, credentials stay out of config.json unless asked for.
    regauth = isinstance(m.get("credential_provider"), dict) and m["credential_provider"].get("type") == "regauth"
    config_json: str | None = None if regauth else CONFIG_JSON
    if "config_json" in m:
        if m["config_json"] is False:
            config_json = None
        else:
            config_json = common.path_option(c, m, p, "config_json", CONFIG_JSON)
    match: dict[str, str] = {}
    if "match" in m:
        raw = c.mapping(m["match"], p + ("match",), "match", 'match:\n  "*-docker.pkg.dev": europe-docker.pkg.dev')
        for pattern, host in (raw or {}).items():
            problem = _match_problem(pattern)
            if problem:
                c.report(M.KUBELET_MATCH_GLOB, p + ("match", pattern), at_key=True, detail=problem)
            elif not isinstance(host, str):
                c.report(M.KUBELET_MATCH_VALUE, p + ("match", pattern), kind=kind_of(host), pattern=pattern)
            else:
                match[pattern] = host
    provider = _parse_provider(c, m["credential_provider"], p + ("credential_provider",)) if "credential_provider" in m else None
    # kubelet reads its flags and provider config only at start; config.json needs no restart.
    restart = c.choice(m, "restart", p, common.RESTART_MODES, "if-running" if regauth else "never")
    if_missing = common.if_missing_option(c, m, p)
    if config_json is None and provider is None:
        c.report(M.KUBELET_NOTHING, p)
    return KubeletTarget(config_json=config_json, match=match, provider=provider, restart=restart, if_missing=if_missing)


def _parse_provider(c: Checker, value: Any, p: tuple) -> Provider | None:
    m = c.mapping(value, p, "credential_provider", "credential_provider:\n  type: gcp")
    if m is None:
        return None
    c.keys(m, PROVIDER_KEYS, p, required=("type",))
    kind = c.choice(m, "type", p, PROVIDER_TYPES, "gcp")
    config = common.path_option(c, m, p, "config", PROVIDER_CONFIG)
    bin_dir = common.path_option(c, m, p, "bin_dir", REGAUTH_BIN_DIR if kind == "regauth" else PROVIDER_BIN_DIR)
    flags = c.choice(m, "kubelet_flags", p, KUBELET_FLAGS, "auto" if kind == "regauth" else "none")
    if kind == "gcp" and flags != "none":
        c.report(M.KUBELET_FLAGS_GCP, p + ("kubelet_flags",))
    images: tuple[str, ...] | None = None if kind == "regauth" else GCP_MATCH_IMAGES
    if "match_images" in m:
        raw = m["match_images"]
        if not isinstance(raw, list) or not raw:
            c.report(M.KUBELET_MATCH_IMAGES, p + ("match_images",), kind=kind_of(raw))
        else:
            for i, item in enumerate(raw):
                problem = _match_problem(item)
                if problem:
                    c.report(M.KUBELET_MATCH_IMAGE, p + ("match_images", i), detail=problem)
            images = tuple(str(x) for x in raw)
    default_duration = REGAUTH_CACHE_DURATION if kind == "regauth" else "1m"
    duration = m.get("cache_duration", default_duration)
    if not isinstance(duration, str) or not _DURATION_RE.match(duration):
        c.report(M.KUBELET_CACHE_DURATION, p + ("cache_duration",), duration=duration)
        duration = default_duration
    elif kind == "regauth" and not re.match(r"^[0-9]+[smh]$", duration):
        c.report(M.KUBELET_CACHE_UNIT, p + ("cache_duration",), duration=duration)
        duration = default_duration
    return Provider(type=kind, config=config, bin_dir=bin_dir, match_images=images, cache_duration=duration, kubelet_flags=flags)


def needs_registries(target: KubeletTarget) -> bool:
    """A gcp credential provider alone stores no credentials, so it needs no registries
    (regauth's provider serves the profile's registries, so it needs them)."""
    return target.provider is None or target.provider.type == "regauth"


def check(c: Checker, target: KubeletTarget, registries: list[Registry], p: tuple) -> None:
    hosts = {r.host for r in registries}
    for pattern, host in target.match.items():
        if host not in hosts:
            c.report(M.KUBELET_MATCH_HOST, p + ("match", pattern), host=host, hosts=", ".join(sorted(hosts)) or "(no registries yet)")
    if target.match and target.config_json is None:
        c.report(M.KUBELET_MATCH_NO_CONFIG, p + ("match",))
    if target.provider is not None and target.provider.type == "regauth":
        for reg in registries:
            if reg.mirror_for is not None:
                c.report(M.PROVIDER_MIRROR, p + ("credential_provider",), host=reg.host, upstream=reg.mirror_for)


def schema() -> dict[str, Any]:
    pattern = {"type": "string", "pattern": MATCH_RE.pattern}
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "config_json": {
                "oneOf": [{"type": "string"}, {"const": False}],
                "default": CONFIG_JSON,
                "description": "kubelet's node-wide config.json (auths), or false to write none.",
            },
            "match": {
                "type": "object",
                "propertyNames": pattern,
                "additionalProperties": {"type": "string"},
                "description": "Extra config.json keys, kubelet globs only (one label per '*'), each -> the registry host whose credentials it gets.",
            },
            "credential_provider": {
                "type": "object",
                "additionalProperties": False,
                "required": ["type"],
                "properties": {
                    "type": {
                        "enum": list(PROVIDER_TYPES),
                        "description": "gcp: Google's auth-provider-gcp (no stored key). regauth: regauth-credential-provider, shipped with the plan, serving every registry of the profile (stored credentials, Secret Manager at pull time, gcp-vm-identity).",
                    },
                    "config": {"type": "string", "default": PROVIDER_CONFIG},
                    "bin_dir": {"type": "string", "description": f"Default {PROVIDER_BIN_DIR} (gcp) or {REGAUTH_BIN_DIR} (regauth)."},
                    "match_images": {"type": "array", "minItems": 1, "items": pattern, "description": f"Default: {', '.join(GCP_MATCH_IMAGES)} (gcp); every registry host, port included (regauth)."},
                    "cache_duration": {"type": "string", "pattern": _DURATION_RE.pattern, "description": f"kubelet's defaultCacheDuration. Default 1m (gcp) or {REGAUTH_CACHE_DURATION} (regauth, which also caches Secret Manager answers that long)."},
                    "kubelet_flags": {
                        "enum": list(KUBELET_FLAGS),
                        "description": "regauth only: where the apply step writes --image-credential-provider-config/-bin-dir: kubeadm (/etc/default/kubelet KUBELET_EXTRA_ARGS), microk8s (args/kubelet), k3s / rke2 (kubelet-arg in config.yaml), auto (by what the node has; default), none.",
                    },
                },
            },
            "restart": {**common.restart_schema("never"), "description": "Restart kubelet after a change, only if it is running; or never. Default never (config.json is re-read), if-running with credential_provider type regauth (flags are read at start)."},
            "if_missing": common.if_missing_schema(),
        },
    }


def plan_step(target: KubeletTarget, creds: list[Credential]) -> Step:
    globs: dict[str, list[str]] = {}
    for pattern, host in target.match.items():
        globs.setdefault(host, []).append(pattern)

    def keys(host: str) -> list[str]:
        return [HUB_KEY if host == DOCKER_HUB_HOST else host, *sorted(globs.get(host, []))]

    spec: dict[str, Any] = {
        "kind": "kubelet",
        "runtime": "kubelet",
        "config_json": target.config_json,
        "restart": target.restart,
        "if_missing": target.if_missing,
        "detect": {"binaries": ["kubelet"]},
        "registries": common.registry_entries(creds, keys) if target.config_json else [],
    }
    parts = []
    if target.config_json and creds:
        parts.append(f"auth for {common.hosts_summary(creds)} in {target.config_json}")
    if target.provider is not None and target.provider.type == "regauth":
        served = [c for c in creds if c.mirror_for is None]
        spec["provider"] = _regauth_provider(target.provider, served)
        spec["detect"] = {"binaries": ["kubelet", "kubelite", "k3s", "rke2"]}
        parts.append(
            f"{REGAUTH_PROVIDER} for {common.hosts_summary(served)} (CredentialProviderConfig in {target.provider.config}, "
            f"credentials in {PROVIDER_STORE} 0600, kubelet flags: {target.provider.kubelet_flags})"
        )
    elif target.provider is not None:
        spec["provider"] = {"config": target.provider.config, "bin_dir": target.provider.bin_dir, "entry": target.provider.entry()}
        parts.append(
            f"{GCP_PROVIDER} CredentialProviderConfig in {target.provider.config} (needs {target.provider.bin_dir}/{GCP_PROVIDER} and kubelet flags "
            f"--image-credential-provider-config={target.provider.config} --image-credential-provider-bin-dir={target.provider.bin_dir})"
        )
    provider_secret = target.provider is not None and target.provider.type == "regauth" and common.holds_secret(creds)
    return Step(
        kind="kubelet",
        spec=spec,
        summary="kubelet: " + "; ".join(parts),
        holds_secret=(common.holds_secret(creds) and bool(target.config_json)) or provider_secret,
    )


def match_images(hosts: list[str]) -> list[str]:
    """regauth's matchImages: every host, port included; Docker Hub as kubelet names its
    images when it matches them (normalised: nginx -> docker.io/library/nginx), plus
    registry-1.docker.io for references that spell that host out."""
    found: set[str] = set()
    for host in hosts:
        found.update(("docker.io", host) if host == DOCKER_HUB_HOST else (host,))
    return sorted(found)


def cache_seconds(duration: str) -> int:
    """``5m`` -> 300 (regauth's cache_duration is one number and one unit: s, m or h)."""
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


def _regauth_provider(provider: Provider, creds: list[Credential]) -> dict[str, Any]:
    """The plan's provider part: kubelet's config entry plus what the node stores for the
    provider (static passwords, Secret Manager names to fetch per request, VM identity)."""
    return {
        "type": "regauth",
        "config": provider.config,
        "bin_dir": provider.bin_dir,
        "entry": provider.entry(match_images([c.host for c in creds])),
        "store": PROVIDER_STORE,
        "cache_seconds": cache_seconds(provider.cache_duration),
        "kubelet_flags": provider.kubelet_flags,
        "registries": common.registry_entries(creds),
    }


def preview(step: Step) -> list[NodeFile]:
    files = common.preview_files(step, "written by regauth-apply on the node (shown as on a node with none of these files)")
    provider = step.spec.get("provider") or {}
    if provider.get("type") == "regauth":
        from generator import applyscript

        # Delivered like regauth-apply (user-data / image): kubelet runs it from bin_dir.
        path = f"{provider['bin_dir'].rstrip('/')}/{REGAUTH_PROVIDER}"
        files.append(NodeFile(path, applyscript.provider_program(), 0o755, secret=False, note="kubelet's image credential provider (answers from the store)"))
    return files
