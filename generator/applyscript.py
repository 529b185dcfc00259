"""``regauth-apply``, the program that runs on the VM: built per plan from ``generator/node``.

The node program is the package ``generator.node`` (standard library only, Python 3.6
syntax).  regauth ships one file per plan holding exactly the modules the plan needs
(``generator/nodebuild.py``); the generator imports the same modules for the rootfs
preview, doctor and verify, so previews and tests run the code a node runs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from types import ModuleType

from generator import nodebuild
from generator.errors import RuntimeFailure
from generator.messages import runtime as R

VM_PATH = "/usr/local/sbin/regauth-apply"
# kubelet's credential provider (issue 16): a second program from the same package.
PROVIDER_NAME = "regauth-credential-provider"
PLAN_PATH = "/etc/regauth/plan.json"
PACKAGE = "generator.node"


@lru_cache(maxsize=1)
def templates_dir() -> Path:
    """Where the shipped templates are.

    Installed (wheel or editable), they are the package ``generator.templates``; in a
    source checkout run as ``python -m generator`` (the repo on sys.path, nothing
    installed) that package does not exist, and the top-level ``templates/`` folder
    beside ``generator/`` is the same files.  Found from ``__file__`` rather than
    importlib.resources, which costs ~15 ms of a ~100 ms cold start.
    """
    try:
        import generator.templates as shipped
    except ImportError:
        beside = Path(__file__).resolve().parent.parent / "templates"
        if (beside / "cloud-config.yaml.j2").is_file():
            return beside
        raise RuntimeFailure(
            f"regauth's templates are missing: neither the package generator.templates nor {beside} exists",
            "reinstall regauth (pip install regauth), or run it from a complete source checkout",
            code=R.TEMPLATES_MISSING.code,
        ) from None
    return Path(shipped.__file__).parent


def script_for(roots: frozenset[str]) -> bytes:
    """The file a node gets when its plan needs the node modules ``roots`` (``plan.modules``)."""
    return nodebuild.build(frozenset(roots))


def script_for_plan(steps: list[dict], refresh: bool = False) -> bytes:
    """The file a node gets for a plan with these steps (as plan.json holds them);
    ``refresh``: the profile has ``refresh:`` (regauth-apply --refresh's one-line log)."""
    from generator.node.plan import modules

    return script_for(frozenset(modules(steps)) | ({"refresh"} if refresh else set()))


def provider_program() -> bytes:
    """regauth-credential-provider: ``credprovider`` and the fetch modules it imports
    inside functions (bootfetch, files), loaded on first import.  Started as
    ``python3 -IS`` (kubelet execs it): isolated from PYTHON* variables and the user's
    site (it runs as root with kubelet's environment), and without the site-packages
    setup it never needs."""
    return nodebuild.build(frozenset({"bootfetch", "files"}), "credprovider", PROVIDER_NAME, " -IS", PROVIDER_NAME + " [--root DIR] [--store FILE] < request.json")


def full_script() -> bytes:
    """The file with every node module (tests, bench)."""
    return script_for(frozenset(nodebuild.program_modules()))


@lru_cache(maxsize=1)
def module() -> ModuleType:
    """Every node module's names in one namespace (for previews and tests), plus ``STEPS``
    (step kind -> prepare function).  The functions are the package's own."""
    import importlib

    facade = ModuleType("regauth_apply")
    for name in nodebuild.modules_for(frozenset(nodebuild.program_modules())):
        mod = importlib.import_module(f"{PACKAGE}.{name}")
        for key, value in vars(mod).items():
            if not key.startswith("__"):
                facade.__dict__.setdefault(key, value)
    from generator.node.main import steps
    from generator.node.plan import STEP_KINDS

    facade.STEPS = steps(sorted(STEP_KINDS))
    return facade
