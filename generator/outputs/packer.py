"""``out/NAME/packer/``: an HCL2 snippet and the files it installs into a golden image.

Layout (checked with Debian's Packer 1.6.6: validate, fmt -check and a real build)::

    registry-auth.pkr.hcl              [a sensitive variable] + one build block
    required-plugins.pkr.hcl           packer { required_plugins } (Packer >= 1.7 only)
    regauth-secrets.auto.pkrvars.hcl   baked mode only: the plan, 0600, secret
    files/install.sh                   static POSIX sh, run as root: install + enable
    files/rootfs/<absolute path>       the image's files

Three modes, chosen from the credentials and ``output.packer.bake_secret``:

- ``plan``: every credential is fetched at boot, so the plan holds no secret and
  is baked as a plain file;
- ``baked``: the plan holds credentials and the profile says ``bake_secret: true``;
  the plan travels base64 in a ``sensitive`` variable, set by the var file, never
  in the snippet, and reaches install.sh through Packer's env-var *file* (not argv);
- ``without-plan``: the plan would hold credentials and baking was not asked for;
  the image gets the script and the unit, and user-data delivers the plan.

Why content travels in files and base64: Packer 1.6.6 runs provisioner strings
through Go templates (``{{`` is mangled), and HCL NFC-normalises string literals,
so arbitrary text cannot survive an HCL string byte for byte.  Why ``sources`` is
a literal: Packer 1.6.6 rejects variables there.
"""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass

from generator import __version__, applyscript
from generator.errors import Problem
from generator.outputs.hcl import hcl_list, hcl_string
from generator.outputs.manifest import OutputFile
from generator.outputs.packer_mode import VAR_FILE_NAME, choose_mode, packer_warning
from generator.outputs.refresh import TIMER_NAME, TIMER_PATH
from generator.outputs.templating import render
from generator.profile.model import Profile
from generator.secrets.resolve import Credential
from generator.targets.base import NodeFile

DIR = "packer"
SNIPPET = f"{DIR}/registry-auth.pkr.hcl"
PLUGINS_FILE = f"{DIR}/required-plugins.pkr.hcl"
VAR_FILE = f"{DIR}/{VAR_FILE_NAME}"
INSTALL = f"{DIR}/files/install.sh"
ROOTFS = f"{DIR}/files/rootfs"

STAGE = "/tmp/regauth-stage"  # created 0700 by the SSH user; mkdir fails if it exists
PLAN_VARIABLE = "registry_plan_b64"
UNIT_NAME = "regauth-apply.service"
UNIT_PATH = f"/etc/systemd/system/{UNIT_NAME}"
PLAN_DIR = applyscript.PLAN_PATH.rsplit("/", 1)[0]

# `sudo -n` only when there is a sudo (root SSH users may have none); -n fails fast
# instead of waiting for a password.  The {{ }} here are Packer's own Go templates.
_SUDO = "$(command -v sudo >/dev/null && echo sudo -n)"
_EXECUTE = f"{_SUDO} sh {{{{ .Path }}}}"
_EXECUTE_WITH_ENV_FILE = f"{_SUDO} sh -c '. {{{{ .EnvVarFile }}}} && sh {{{{ .Path }}}}'"


@dataclass(frozen=True)
class Plugin:
    """A ``required_plugins`` entry for a builder type (Packer >= 1.7)."""

    name: str
    source: str
    version: str


#: Builder types whose plugin we know; the origin case is googlecompute (>= 1.1.0
#: is the release line that works with `packer init` on Packer 1.7+).
KNOWN_PLUGINS = {"googlecompute": Plugin("googlecompute", "github.com/hashicorp/googlecompute", ">= 1.1.0")}
BUILTIN_BUILDERS = frozenset({"null", "file"})


@dataclass(frozen=True)
class PackerOutput:
    files: list[OutputFile]
    warnings: list[Problem]
    mode: str  # plan | baked | without-plan


def runtime_units(profile: Profile) -> list[str]:
    """systemd units of the profile's runtimes, from each target module's ``UNITS``."""
    from generator.targets import TARGETS

    return sorted({unit for name in profile.targets for unit in TARGETS[name].UNITS})


def _owner(f: NodeFile) -> tuple[str, str]:
    user, _, group = f.owner.partition(":")
    return user, group or user


def _install_entry(f: NodeFile) -> dict[str, str]:
    user, group = _owner(f)
    return {"path": shlex.quote(f.path), "user": shlex.quote(user), "group": shlex.quote(group), "mode": f"{f.mode:04o}"}


def _var_file(profile: Profile, plan: NodeFile) -> bytes:
    """The only file holding the baked plan: written by a serializer, never by Jinja."""
    value = base64.b64encode(plan.data).decode("ascii")
    lines = [
        f"# Written by regauth {__version__} from profile {' '.join(profile.name.split())}.",
        "# SECRET: the apply plan WITH registry credentials (base64 of plan.json). Keep this",
        "# file out of git (add *.auto.pkrvars.hcl to .gitignore) and delete it after the",
        "# build. Packer loads *.auto.pkrvars.hcl from the template folder by itself; from",
        "# elsewhere pass it with -var-file=FILE.",
        f"{PLAN_VARIABLE} = {hcl_string(value)}",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _plugins(sources: tuple[str, ...]) -> tuple[list[Plugin], list[str]]:
    plugins: dict[str, Plugin] = {}
    unknown: list[str] = []
    for ref in sources:
        builder = ref.split(".")[1]
        if builder in KNOWN_PLUGINS:
            plugins[KNOWN_PLUGINS[builder].name] = KNOWN_PLUGINS[builder]
        elif builder not in BUILTIN_BUILDERS:
            unknown.append(ref)
    return sorted(plugins.values(), key=lambda p: p.name), unknown


def baked_files(node_files: list[NodeFile]) -> list[NodeFile]:
    """The files user-data would deliver that the image built from ``out/NAME/packer/``
    carries whatever the mode: all but the plan (baked only in the modes of
    ``choose_mode``).  With ``output.program: image`` user-data delivers the rest, so
    this is the one place that says what an image has."""
    return [f for f in node_files if f.delivered and f.path != applyscript.PLAN_PATH]


def packer_output(profile: Profile, creds: list[Credential], node_files: list[NodeFile]) -> PackerOutput:
    """Every file of ``out/NAME/packer/`` plus the warning of the without-plan mode."""
    by_path = {f.path: f for f in node_files}
    script, plan = by_path[applyscript.VM_PATH], by_path[applyscript.PLAN_PATH]
    # Anything else user-data delivers goes into the image too; a secret one would
    # need its own baking rule, so refuse rather than silently leave it out.
    extra = [f for f in baked_files(node_files) if f.path != script.path]
    if any(f.secret for f in extra):
        raise ValueError("packer output has no rule for baking a secret file other than the plan")
    mode = choose_mode(profile, plan.secret)
    units = runtime_units(profile)
    common = {"regauth_version": __version__, "profile": profile.name, "units": units}
    unit = NodeFile(
        UNIT_PATH,
        render("regauth-apply.service.j2", plan_path=applyscript.PLAN_PATH, script_path=applyscript.VM_PATH, **common).encode("utf-8"),
        0o644,
        secret=False,
        note="enabled; runs regauth-apply" + (f" before {', '.join(units)}" if units else " at boot"),
    )
    image = [script, unit, *extra] + ([plan] if mode == "plan" else [])
    contents = [(f.path, f.note) for f in image]
    if mode == "baked":
        contents.append((plan.path, "0600, from the sensitive variable (holds credentials)"))
    elif mode == "without-plan":
        contents.append((plan.path, "not baked: delivered by user-data (it holds credentials)"))
    summary = ", ".join(f.path for f in image)
    if mode == "baked":
        summary += f", {plan.path} (0600, with credentials)"
    elif mode == "without-plan":
        summary += f" (no plan: user-data delivers {plan.path})"

    install = render(
        "packer-install.sh.j2",
        stage=shlex.quote(STAGE),
        plan_dir=shlex.quote(PLAN_DIR),
        files=[_install_entry(f) for f in image],
        baked=mode == "baked",
        plan=_install_entry(plan),
        variable=PLAN_VARIABLE,
        unit_name=UNIT_NAME + "".join(f" {TIMER_NAME}" for f in image if f.path == TIMER_PATH),
        summary=summary,
        **common,
    )
    snippet = render(
        "packer-registry-auth.pkr.hcl.j2",
        profile_file=str(profile.file),
        mode=mode,
        contents=contents,
        variable=PLAN_VARIABLE,
        sources=hcl_list(profile.output.packer.sources),
        stage=hcl_string(STAGE),
        mkdir_stage=hcl_string(f"mkdir -m 0700 {STAGE}"),
        remove_stage=hcl_string(f"rm -rf {STAGE}"),
        execute_command=hcl_string(_EXECUTE_WITH_ENV_FILE if mode == "baked" else _EXECUTE),
        **common,
    )
    files = [OutputFile(SNIPPET, snippet.encode("utf-8"), 0o644, False, note=f"Packer HCL2: build block with the provisioners ({mode})")]
    plugins, unknown = _plugins(profile.output.packer.sources)
    if plugins or unknown:
        text = render(
            "packer-required-plugins.pkr.hcl.j2",
            plugins=[{"name": p.name, "source": hcl_string(p.source), "version": hcl_string(p.version)} for p in plugins],
            unknown=unknown,
            **common,
        )
        files.append(OutputFile(PLUGINS_FILE, text.encode("utf-8"), 0o644, False, note="required_plugins, for Packer >= 1.7 only"))
    files.append(OutputFile(INSTALL, install.encode("utf-8"), 0o755, False, note="run as root by the snippet: installs and enables"))
    for f in image:
        files.append(OutputFile(ROOTFS + f.path, f.data, f.mode, f.secret, vm_path=f.path, owner=f.owner, note=f.note))
    if mode == "baked":
        files.append(OutputFile(VAR_FILE, _var_file(profile, plan), 0o600, True, note=f"sensitive variable {PLAN_VARIABLE}: keep out of git"))
    return PackerOutput(files, packer_warning(profile, plan.secret), mode)
