"""The pipeline: profile -> secrets -> runtime targets -> outputs -> out/NAME/.

Every profile is validated before anything is fetched, and every secret is resolved
before anything is written, so a run with one bad input writes nothing at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from generator import __version__, applyscript
from generator.errors import InvalidInput, Problem, RuntimeFailure
from generator.node.plan import PLAN_FORMAT, check_plan
from generator.outputs.cloudinit import cloud_config
from generator.outputs.userdata import multipart, package
from generator.outputs.manifest import OutputFile, with_manifest
from generator.outputs.packer import baked_files, packer_output
from generator.outputs.writer import commit_all, discard, stage_tree
from generator.profile.model import Profile
from generator.profiles import check_profile
from generator.profiles import gather as _gather
from generator.secrets.resolve import Credential, SecretResolver
from generator.targets import TARGETS, plan_steps
from generator.targets.base import NodeFile, Step


@dataclass
class Rendered:
    profile: Profile
    files: list[OutputFile]
    steps: list[Step]
    warnings: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said on stderr after the render (e.g. gzip applied)

    @property
    def name(self) -> str:
        return self.profile.name


def node_files(profile: Profile, steps: list[Step]) -> list[NodeFile]:
    holds_secret = any(s.holds_secret for s in steps)
    plan = {"format": PLAN_FORMAT, "profile": profile.name, "steps": [s.spec for s in steps]}
    check_plan(plan)  # the node's own definition of each step: a mismatch is a bug here, not bad input
    plan_bytes = (json.dumps(plan, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
    if profile.output.program == "image":
        # Baked into the image: every module, so the image serves any plan of this
        # format (its user-data can come from another profile, or a later render).
        program, note = applyscript.full_script(), "applies the plan at boot (every module: baked into the image)"
    elif profile.output.program == "url":
        # Every module too: one file per regauth version serves every profile's user-data.
        program, note = applyscript.full_script(), f"applies the plan at first boot: serve this file at {profile.output.program_url} (user-data fetches it and checks its SHA-256)"
    else:
        program, note = applyscript.script_for_plan([s.spec for s in steps], profile.refresh is not None), "applies the plan at first boot"
    files = [
        NodeFile(applyscript.VM_PATH, program, 0o755, secret=False, note=note),
        NodeFile(applyscript.PLAN_PATH, plan_bytes, 0o600 if holds_secret else 0o644, secret=holds_secret, note="what regauth-apply reads: the steps to apply"),
    ]
    if profile.refresh is not None:
        from generator.outputs.refresh import refresh_units

        files.extend(refresh_units(profile.name, profile.refresh))
    previews: dict[str, NodeFile] = {}
    for step in steps:
        for f in TARGETS[step.kind].preview(step):
            previews[f.path] = f  # two targets, one file (e.g. certs.d): the later one wins, as on the node
    files.extend(previews.values())
    return files


def render_profile(profile: Profile, creds: list[Credential], merge_with: list[tuple[str, bytes]] | None = None) -> Rendered:
    steps = plan_steps(profile, creds)
    files = node_files(profile, steps)
    hosts = sorted({c.host for c in creds})
    baked = {f.path for f in baked_files(files)} if profile.output.program == "image" else set()
    plain = cloud_config(profile.name, str(profile.file), hosts, files, baked, profile.output.program_url)
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
    packer = packer_output(profile, creds, files)  # out/NAME/packer/: golden-image snippet
    outputs.extend(packer.files)
    notes = [_compressed_note(profile.output.cloud, user_data.why)] if user_data.compressed else []
    if profile.output.program_url:
        notes.append(f"user-data fetches regauth-apply from {profile.output.program_url} at first boot: serve {profile.name}/rootfs{applyscript.VM_PATH} "
                     f"of the output folder there (the same file for every profile of regauth {__version__}; user-data refuses other bytes)")
    return Rendered(profile, outputs, steps, packer.warnings, notes)


def _compressed_note(cloud: str, why: str) -> str:
    send = "send user-data as is (cloud-init unpacks gzip)" if cloud in ("aws", "none") else "send user-data.b64 with user-data-encoding=base64"
    return f"user-data is gzip-compressed ({why}): {send}"


@dataclass
class Outcome:
    """What one profile's render produced, small enough to send back from a worker."""

    name: str
    rendered: Rendered | None = None  # kept only for --dry-run
    stage: Path | None = None
    files: int = 0
    size: int = 0
    warnings: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    failure: tuple[str, str, str] | None = None  # RuntimeFailure (cause, fix, code): exceptions don't pickle well


@dataclass(frozen=True)
class _Job:
    out_dir: Path
    write: bool
    merge_with: tuple[tuple[str, bytes], ...] = field(repr=False)  # the user's user-data may hold secrets


def _render_one(job: _Job, resolver: SecretResolver, profile: Profile) -> Outcome:
    outcome = Outcome(profile.name)
    try:
        creds = resolver.credentials(profile)
        rendered = render_profile(profile, creds, list(job.merge_with))
        outcome.warnings = list(rendered.warnings)
        outcome.notes = list(rendered.notes)
        files = with_manifest(rendered)
        outcome.files, outcome.size = len(files), sum(len(f.data) for f in files)
        if job.write:
            outcome.stage = stage_tree(job.out_dir / profile.name, files)
        else:
            outcome.rendered = rendered
    except InvalidInput as exc:
        outcome.problems = exc.problems
    except RuntimeFailure as exc:
        outcome.failure = (exc.cause, exc.fix, exc.code)
    return outcome


# Each worker process gets the run's resolver once, from the pool initializer.  With
# the fork start method the initializer's arguments are inherited, never pickled, so
# secrets (SecretValue refuses pickling) don't travel through pipes or arguments.
_WORKER_RESOLVER: SecretResolver | None = None


def _init_worker(resolver: SecretResolver) -> None:
    global _WORKER_RESOLVER
    _WORKER_RESOLVER = resolver


def _render_in_worker(job: _Job, profile: Profile) -> Outcome:
    assert _WORKER_RESOLVER is not None
    return _render_one(job, _WORKER_RESOLVER, profile)


def _pool_map(fn, items: list, jobs: int, progress=None, *, worker_fn=None, worker_init=None) -> list:  # type: ignore[no-untyped-def]
    """Map in order; in a forked process pool when there is enough work for it to pay.

    ``worker_fn`` (default ``fn``) runs in the pool, after ``worker_init`` (a
    ``(initializer, args)`` pair) has set each worker up.
    """
    if jobs <= 1 or len(items) < PARALLEL_THRESHOLD:
        out = []
        for item in items:
            out.append(fn(item))
            if progress:
                progress(1)
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from generator.outputs.templating import preload

    preload()  # workers inherit compiled templates instead of each compiling (and caching) them
    initializer, initargs = worker_init or (None, ())
    chunk = max(1, min(64, len(items) // (jobs * 8)))
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=initializer, initargs=initargs) as pool:
        out = []
        for result in pool.map(worker_fn or fn, items, chunksize=chunk):
            out.append(result)
            if progress:
                progress(1)
        return out


PARALLEL_THRESHOLD = 48  # below this, forking costs more than it saves (measured in bench/)


def default_jobs() -> int:
    import os

    return max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1), 8))


def render_all(
    paths: list[Path],
    out_dir: Path,
    *,
    write: bool = True,
    merge_with: list[tuple[str, bytes]] | None = None,
    gsm_settings: object | None = None,
    jobs: int | None = None,
    progress=None,  # type: ignore[no-untyped-def]
) -> list[Outcome]:
    """Render every profile; all-or-nothing: any problem anywhere and nothing is written."""
    from functools import partial

    jobs = jobs or default_jobs()
    profiles, problems = _gather(_pool_map(check_profile, list(paths), jobs), out_dir)
    if any(p.severity == "error" for p in problems):
        # Nothing is rendered; still report the key problems of the profiles that loaded.
        from generator.secrets.resolve import local_problems

        raise InvalidInput(problems + [p for profile in profiles for p in local_problems(profile)])
    warnings: dict[str, list[Problem]] = {}
    for p in problems:
        warnings.setdefault(p.file, []).append(p)

    resolver = SecretResolver(gsm_settings)
    resolver.prefetch_remote(profiles)  # Secret Manager: once per secret, concurrently, before forking
    job = _Job(out_dir, write, tuple(merge_with or ()))
    outcomes: list[Outcome] = _pool_map(
        partial(_render_one, job, resolver),
        profiles,
        jobs,
        progress,
        worker_fn=partial(_render_in_worker, job),
        worker_init=(_init_worker, (resolver,)),
    )
    for outcome, profile in zip(outcomes, profiles):
        outcome.warnings = warnings.get(str(profile.file), []) + outcome.warnings
    failed = [o for o in outcomes if o.problems or o.failure]
    if failed:
        for o in outcomes:
            if o.stage is not None:
                discard(o.stage)
        first_failure = next((o.failure for o in failed if o.failure), None)
        if first_failure:
            cause, fix, code = first_failure
            raise RuntimeFailure(cause, fix, code=code)
        raise InvalidInput([p for o in failed for p in o.problems])
    # All or nothing for the fleet too: a failed swap puts back the ones already swapped.
    commit_all([(o.stage, out_dir / o.name) for o in outcomes if o.stage is not None])
    return outcomes
