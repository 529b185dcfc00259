"""``tomllib`` for every Python the generator declares (3.10-3.13).

``tomllib`` joined the standard library in 3.11; on 3.10 its backport ``tomli``
(declared in pyproject.toml for ``python_version < '3.11'``) has the same API.
Import it from here (``from generator.tomlcompat import tomllib``) so the choice is
made in one place.  The node program (stdlib only) does not use this.
"""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised by the 3.10 run of scripts/test.sh
    import tomli as tomllib

__all__ = ["tomllib"]
