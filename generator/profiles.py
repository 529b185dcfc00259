"""Profiles as the commands see them: the layers wired together, then many at once.

:mod:`generator.profile` validates a profile's document but knows neither the runtimes
nor how secrets are read (it sits below both); this module, above them, passes the
registry of targets, the secret sources and the offline secret checks in.  It also loads many profiles at
once with the checks that span them (name clashes).  Kept apart from
:mod:`generator.render` so ``regauth validate`` and ``verify`` load profiles without
importing the output stage (Jinja and friends).
"""

from __future__ import annotations

from pathlib import Path

from generator.errors import InvalidInput, Problem
from generator.messages import inputs as M
from generator.profile import load
from generator.profile.model import Profile
from generator.secrets.sources import SOURCES  # each source parses its own secrets: block
from generator.targets import TARGETS  # a lazy mapping: a runtime's module loads on first lookup


def _key_problems(profile: Profile) -> list[Problem]:
    from generator.secrets.resolve import local_problems  # only for a profile with other errors

    return local_problems(profile)


def check_profile(path: Path) -> tuple[Profile | None, list[Problem]]:
    """Every problem of one profile file (see :func:`generator.profile.load.check_profile`)."""
    return load.check_profile(path, TARGETS, SOURCES, _key_problems)


def load_profile(path: Path) -> Profile:
    """One valid profile, or InvalidInput listing every problem."""
    return load.load_profile(path, TARGETS, SOURCES, _key_problems)


def profile_schema() -> dict[str, object]:
    """The JSON Schema of a profile (``regauth schema``), every runtime's options included."""
    from generator.profile.schema import profile_schema as schema

    return schema(TARGETS)


def load_all(paths: list[Path]) -> tuple[list[Profile], list[Problem]]:
    """Validate every profile; return them with warnings, or raise with every error."""
    return collect([check_profile(path) for path in paths])


def check_all(paths: list[Path]) -> list[Problem]:
    """``regauth validate``: every problem of every profile, key checks and render's
    warnings included, no network.

    Profiles that load have their file/env secrets checked here; profiles with errors
    had theirs checked by :func:`check_profile`.  Nothing stops at the first bad file.
    """
    from generator.outputs.packer_mode import packer_warning
    from generator.secrets.resolve import SecretResolver, offline_credentials
    from generator.targets import plan_steps

    profiles, problems = gather([check_profile(path) for path in paths])
    resolver = SecretResolver(offline=True)  # one per run: a key shared by many profiles is read once
    for profile in profiles:
        creds, found = offline_credentials(profile, resolver)
        problems.extend(found)
        if not found:  # the warnings render would give (from the same rule)
            problems.extend(packer_warning(profile, any(s.holds_secret for s in plan_steps(profile, creds))))
    return problems


def collect(loaded: list[tuple[Profile | None, list[Problem]]], out_dir: Path | None = None) -> tuple[list[Profile], list[Problem]]:
    """Profiles that loaded, plus every problem; raise InvalidInput when any is an error."""
    profiles, problems = gather(loaded, out_dir)
    if any(p.severity == "error" for p in problems):
        raise InvalidInput(problems)
    return profiles, problems


def gather(loaded: list[tuple[Profile | None, list[Problem]]], out_dir: Path | None = None) -> tuple[list[Profile], list[Problem]]:
    """Profiles that loaded, plus every problem, cross-profile ones (name clashes) included.

    ``out_dir`` is the folder a render writes into (named in the clash message); validate has none."""
    problems: list[Problem] = [p for _, found in loaded for p in found]
    profiles: list[Profile] = []
    seen: dict[str, Path] = {}
    for profile, _ in loaded:
        if profile is None:
            continue
        if profile.name in seen:
            target = f"{out_dir.as_posix().rstrip('/')}/{profile.name}/" if out_dir is not None else f"the output folder's {profile.name}/"
            problems.append(
                M.PROFILE_NAME_CLASH.problem(str(profile.file), name=profile.name, other=seen[profile.name], target=target)
            )
            continue
        seen[profile.name] = profile.file
        profiles.append(profile)
    return profiles, problems
