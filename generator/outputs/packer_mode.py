"""Which Packer layout a profile gets, and the one warning about it.

Kept apart from :mod:`generator.outputs.packer` (Jinja, HCL) so ``regauth validate``
gives the same warning as ``render`` without loading the output stage.
"""

from __future__ import annotations

from generator.errors import Problem
from generator.messages import inputs as M
from generator.profile.model import Profile

VAR_FILE_NAME = "regauth-secrets.auto.pkrvars.hcl"


def choose_mode(profile: Profile, plan_holds_secret: bool) -> str:
    """plan | baked | without-plan; the plan's own secret flag decides (a target may keep
    credentials out of it)."""
    if not plan_holds_secret:
        return "plan"
    return "baked" if profile.output.packer.bake_secret is True else "without-plan"


def packer_warning(profile: Profile, plan_holds_secret: bool) -> list[Problem]:
    """The image would get no plan: said once, at ``output.packer``, and only to profiles
    that configure Packer output (everyone else never builds an image from it)."""
    at = profile.output.packer.at
    # output.program: image says it already: this image goes with this profile's user-data.
    if at is None or profile.output.packer.bake_secret is not None or profile.output.program == "image":
        return []
    if choose_mode(profile, plan_holds_secret) != "without-plan":
        return []
    return [
        M.PACKER_NO_PLAN.problem(at.file, at.path, at.line, at.col, var_file=VAR_FILE_NAME)
    ]
