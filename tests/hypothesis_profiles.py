"""Hypothesis settings profiles, chosen once for the whole test run.

Why a module of its own: conftest.py is shared by every engineer; it imports this
file with one line, and the numbers live here next to the reasoning.

- ``dev`` (default on a workstation): few examples, quick feedback.
- ``ci`` (selected automatically when ``CI=true``): at least 2,000 examples for
  every property that does not pin its own count, fixed seed
  (``derandomize=True``), so a CI failure reproduces byte for byte on any machine.
- ``long``: the soak run, e.g. before a release or after touching an escaper:
  ``HYPOTHESIS_PROFILE=long python3 -m pytest -q tests/unit/test_roundtrip_props.py tests/unit/test_loader_fuzz.py``
  (random seed on purpose: it explores new inputs; a failure prints the
  ``@reproduce_failure`` blob to pin it).

``HYPOTHESIS_PROFILE=NAME`` overrides the automatic choice.  No profile has a
per-example deadline: examples render whole profiles and a busy CI machine must
not turn slowness into flaky failures (wall-clock assertions are banned here).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: Examples per property in CI; tests that need the number (e.g. to size a sample) read it here.
CI_EXAMPLES = 2000

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])

settings.register_profile("dev", max_examples=100, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("ci", max_examples=CI_EXAMPLES, derandomize=True, print_blob=True, database=None, **_COMMON)
settings.register_profile("long", max_examples=50_000, derandomize=False, print_blob=True, **_COMMON)


def chosen_profile() -> str:
    explicit = os.environ.get("HYPOTHESIS_PROFILE", "").strip()
    if explicit:
        return explicit
    return "ci" if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes") else "dev"


settings.load_profile(chosen_profile())
