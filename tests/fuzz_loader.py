"""Coverage-guided fuzzing of the profile loader with atheris (optional; not run by pytest).

    pip install atheris && python3 tests/fuzz_loader.py -max_total_time=600

Any exception other than our own error types is a bug (the hypothesis version of this
check runs in CI: tests/unit/test_loader_fuzz.py).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from generator.errors import RegauthError
    from generator.profiles import check_profile, load_profile

FOLDER = Path(tempfile.mkdtemp(prefix="regauth-atheris-"))


def one_input(data: bytes) -> None:
    path = FOLDER / "p.yaml"
    path.write_bytes(data)
    _profile, problems = check_profile(path)
    for problem in problems:
        problem.render()
    try:
        load_profile(path)
    except RegauthError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
