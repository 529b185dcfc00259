"""The plan: what regauth writes to /etc/regauth/plan.json and this program reads.

Which module and function prepare each step kind is written here once: the program
imports only the modules of its plan's step kinds, and regauth ships only those (the
generator follows this table and the modules' imports).
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
            raise ApplyError("registry %s has no password in the plan" % entry.get("host"))
        cred = {k: v for k, v in entry.items() if k not in ("password", "password_from")}
        cred["password"] = password
        out.append(cred)
    return out
