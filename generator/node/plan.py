"""The plan: what regauth writes to /etc/regauth/plan.json and this program reads.

Written here once, for both sides: the format number, each step kind's fields and
types (the node checks every plan it reads against them; the generator checks what it
renders and derives schema/plan-v1.json from them), and which module prepares each
kind (the program imports only those, and regauth ships only those).
"""

from typing import List, Optional

from .errors import ApplyError

PLAN_FORMAT = 1

# step kind -> (module of this package, its prepare function)
STEP_KINDS = {
    "containerd": ("containerd", "prepare_containerd"),
    "microk8s": ("microk8s", "prepare_microk8s"),
    "k3s": ("rancher", "prepare_registries_yaml"),
    "rke2": ("rancher", "prepare_registries_yaml"),
    "docker": ("authfile", "prepare_auth_file"),
    "podman": ("authfile", "prepare_auth_file"),
    "crio": ("authfile", "prepare_auth_file"),
    "kubelet": ("kubelet", "prepare_kubelet"),
}


# Each step kind's fields: name -> JSON type(s); a name ending in "?" is optional.
_COMMON = {"kind": "string", "registries": "array", "runtime?": "string", "if_missing?": "string", "detect?": "object", "restart?": "string"}
_CONTAINERD = {"path": "string", "containerd_version": "string", "hosts_dir?": "string", "hosts?": "array"}
_RANCHER = {"path": "string", "tls_dir": "string", "units": "array", "mirrors": "array"}
_AUTH_FILE = {
    "path": "string", "certs_dir": "string", "helpers_conflict": "string", "units?": "array",
    "dropin?": "string", "registries_conf?": "string", "registries_conf_path?": "string",
}
STEP_FIELDS = {
    "containerd": dict(_CONTAINERD, unit="string"),
    "microk8s": dict(_CONTAINERD, dollar_safe="boolean", wait="integer", units="array", restart_command="array", placeholders="object"),
    "k3s": _RANCHER,
    "rke2": _RANCHER,
    "docker": _AUTH_FILE,
    "podman": _AUTH_FILE,
    "crio": _AUTH_FILE,
    "kubelet": {"config_json": ("string", "null"), "provider?": "object"},
}
# kubelet's provider: the CredentialProviderConfig entry; with type regauth also the
# store regauth-credential-provider answers from (its registries: REGISTRY_FIELDS).
PROVIDER_FIELDS = {
    "config": "string", "bin_dir": "string", "entry": "object", "type?": "string", "store?": "string",
    "cache_seconds?": "integer", "kubelet_flags?": "string", "registries?": "array",
}
# One registry of a step: its password is in the plan, or fetched at boot (password_from).
REGISTRY_FIELDS = {
    "host": "string", "username": "string", "password?": "string", "password_from?": "object",
    "keys?": "array", "mirror_for?": "string", "path?": "string", "tls?": "object",
    "identity?": "string",  # "gcp-vm": no password anywhere (credential provider only)
}
_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list, "object": dict, "null": type(None)}


class PlanError(ApplyError):
    """The plan does not match this program (exit 2: re-render with a matching regauth)."""

    code = "node-plan-invalid"


def _check(value: object, fields: dict, where: str) -> None:
    if not isinstance(value, dict):
        raise PlanError("%s is not an object" % where)
    known = set()
    for name, kinds in fields.items():
        optional = name.endswith("?")
        name = name.rstrip("?")
        known.add(name)
        if name not in value:
            if optional:
                continue
            raise PlanError("%s has no %r" % (where, name))
        kinds = (kinds,) if isinstance(kinds, str) else kinds
        got = value[name]
        if not any(isinstance(got, _TYPES[k]) and not (k == "integer" and isinstance(got, bool)) for k in kinds):
            raise PlanError("%s: %r is not %s" % (where, name, " or ".join(kinds)))
    extra = sorted(set(value) - known)
    if extra:
        raise PlanError("%s: unknown field %r" % (where, extra[0]))


def check_plan(plan: object) -> None:
    """Every step and registry of ``plan`` as STEP_FIELDS / REGISTRY_FIELDS define them."""
    if not isinstance(plan, dict) or plan.get("format") != PLAN_FORMAT:
        raise PlanError("plan format %r is not %d" % (plan.get("format") if isinstance(plan, dict) else None, PLAN_FORMAT))
    if not isinstance(plan.get("steps"), list):
        raise PlanError("the plan has no list of steps")
    for index, step in enumerate(plan["steps"], 1):
        kind = step.get("kind") if isinstance(step, dict) else None
        if kind not in STEP_FIELDS:
            raise PlanError("step %d: unknown step kind %r" % (index, kind))
        where = "step %d (%s)" % (index, kind)
        _check(step, dict(_COMMON, **STEP_FIELDS[kind]), where)
        for number, entry in enumerate(step["registries"], 1):
            _check(entry, REGISTRY_FIELDS, "%s registry %d" % (where, number))
        if "provider" in step:
            _check(step["provider"], PROVIDER_FIELDS, "%s provider" % where)
            for number, entry in enumerate(step["provider"].get("registries") or [], 1):
                _check(entry, REGISTRY_FIELDS, "%s provider registry %d" % (where, number))


def needs_hosts(creds: List[dict]) -> bool:
    """Mirrors or TLS: certs.d/*/hosts.toml (and config_path) are needed."""
    return any(c.get("mirror_for") or c.get("tls") for c in creds)


def fetches_at_boot(steps: List[dict]) -> bool:
    """Some password is fetched at boot (``password_from``), not carried by the plan."""
    return any("password_from" in e for step in steps for e in step.get("registries") or [])


def modules(steps: List[dict]) -> List[str]:
    """The modules a program for ``steps`` loads: each kind's module, plus those its code
    imports only when the plan needs them (hosts.toml for mirrors/TLS, boot fetches).
    The shipped file holds these and everything they import."""
    names = {"main"}
    for step in steps:
        names.add(STEP_KINDS[step["kind"]][0])
        if step["kind"] in ("containerd", "microk8s") and needs_hosts(step.get("registries") or []):
            names.add("hoststoml")
    if fetches_at_boot(steps):
        names.add("bootfetch")
    if any((step.get("provider") or {}).get("type") == "regauth" for step in steps):
        names.add("kubeletprovider")  # regauth's kubelet credential provider: store + flags
    return sorted(names)


def credentials(entries: List[dict], fetcher: Optional[object] = None) -> List[dict]:
    """username/password pairs: resolved at render time, or fetched now (boot mode)."""
    out = []
    for entry in entries:
        if "password" in entry:
            password = entry["password"]
        elif "password_from" in entry and fetcher is not None:
            password = fetcher.password(entry["password_from"])
        else:
            raise ApplyError("registry %s has no password in the plan" % entry.get("host"), code="node-plan-invalid")
        cred = {k: v for k, v in entry.items() if k not in ("password", "password_from")}
        cred["password"] = password
        out.append(cred)
    return out
