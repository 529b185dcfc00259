"""The pipeline: profile -> secrets -> runtime targets -> outputs -> out/NAME/.

Every profile is validated before anything is fetched, and every secret is resolved
before anything is written, so a run with one bad input writes nothing at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from generator import applyscript
from generator.errors import InvalidInput, Problem
from generator.outputs.cloudinit import cloud_config
from generator.outputs.userdata import multipart, package
from generator.outputs.manifest import OutputFile, manifest
from generator.outputs.writer import write_tree
from generator.profile.load import check_profile
from generator.profile.model import Profile
from generator.secrets.resolve import Credential, SecretResolver
from generator.targets import TARGETS
from generator.targets.base import NodeFile, Step


@dataclass
class Rendered:
    profile: Profile
    files: list[OutputFile]
    steps: list[Step]
    warnings: list[Problem] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.profile.name


def load_all(paths: list[Path]) -> tuple[list[Profile], list[Problem]]:
    """Validate every profile; return them with warnings, or raise with every error."""
    profiles: list[Profile] = []
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    for path in paths:
        profile, found = check_profile(path)
        problems.extend(found)
        if profile is None:
            continue
        if profile.name in seen:
            problems.append(
                Problem(str(path), f"another profile is also named '{profile.name}' ({seen[profile.name]}); both would write out/{profile.name}/", "rename one of the files")
            )
            continue
        seen[profile.name] = path
        profiles.append(profile)
    if any(p.severity == "error" for p in problems):
        raise InvalidInput(problems)
    return profiles, problems


def plan_steps(profile: Profile, creds: list[Credential]) -> list[Step]:
    return [TARGETS[name].plan_step(options, creds) for name, options in profile.targets.items()]


def node_files(profile: Profile, steps: list[Step]) -> list[NodeFile]:
    holds_secret = any(s.holds_secret for s in steps)
    plan = {"format": 1, "profile": profile.name, "steps": [s.spec for s in steps]}
    plan_bytes = (json.dumps(plan, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    files = [
        NodeFile(applyscript.VM_PATH, applyscript.script_bytes(), 0o755, secret=False, note="applies the plan at first boot"),
        NodeFile(applyscript.PLAN_PATH, plan_bytes, 0o600 if holds_secret else 0o644, secret=holds_secret, note="what regauth-apply writes"),
    ]
    for step in steps:
        files.extend(TARGETS[step.kind].preview(step))
    return files


def render_profile(profile: Profile, creds: list[Credential], merge_with: list[tuple[str, bytes]] | None = None) -> Rendered:
    steps = plan_steps(profile, creds)
    files = node_files(profile, steps)
    hosts = sorted({c.host for c in creds})
    plain = cloud_config(profile.name, str(profile.file), hosts, files)
    if merge_with:
        plain = multipart(plain, merge_with)
    user_data = package(plain, cloud=profile.output.cloud, compress=profile.output.compress, profile_file=str(profile.file))
    holds_secret = any(f.secret and f.delivered for f in files)
    mode = 0o600 if holds_secret else 0o644
    kind = ("multipart MIME" if merge_with else "#cloud-config") + (", gzip" if user_data.compressed else "")
    outputs = [OutputFile("user-data", user_data.raw, mode, holds_secret, note=f"{kind} for new VMs")]
    if user_data.compressed:
        outputs.append(
            OutputFile("user-data.b64", user_data.base64 + b"\n", mode, holds_secret, note="base64 of user-data, for GCE metadata with user-data-encoding=base64")
        )
    for f in files:
        outputs.append(
            OutputFile("rootfs" + f.path, f.data, f.mode, f.secret, vm_path=f.path, owner=f.owner, note=f.note)
        )
    return Rendered(profile, outputs, steps)


def with_manifest(rendered: Rendered) -> list[OutputFile]:
    doc = manifest(
        rendered.name,
        rendered.files,
        [s.summary for s in rendered.steps],
        [w.render() for w in rendered.warnings],
    )
    return rendered.files + [OutputFile("manifest.json", doc, 0o644, False)]


def render_all(
    paths: list[Path],
    out_dir: Path,
    *,
    write: bool = True,
    merge_with: list[tuple[str, bytes]] | None = None,
    gsm_settings: object | None = None,
) -> list[Rendered]:
    profiles, warnings = load_all(paths)
    resolver = SecretResolver(gsm_settings)
    resolver.prefetch(profiles)
    results: list[Rendered] = []
    problems: list[Problem] = []
    for profile in profiles:
        try:
            creds = resolver.credentials(profile)
        except InvalidInput as exc:
            problems.extend(exc.problems)
            continue
        try:
            rendered = render_profile(profile, creds, merge_with)
        except InvalidInput as exc:
            problems.extend(exc.problems)
            continue
        rendered.warnings = [w for w in warnings if w.file == str(profile.file)]
        results.append(rendered)
    if problems:
        raise InvalidInput(problems)
    if write:
        for rendered in results:
            write_tree(out_dir / rendered.name, with_manifest(rendered))
    return results
