"""The Jinja environment: layout only, never a place where secrets are spliced.

StrictUndefined turns a typo in a template into an error instead of an empty
string.  Values from profiles are data: they are passed in as variables and go
through filters; a profile string like ``{{ 7*7 }}`` is never evaluated.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import jinja2

from generator import __version__
from generator.applyscript import templates_dir


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates in the user's cache dir: compiling them costs ~20 ms of a
    ~130 ms cold render.  Best effort and safe to share: entries are keyed by the
    template's source checksum (Jinja's own check), written atomically, and any
    unreadable or half-written entry is simply compiled again."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError, TypeError):
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        name = self._get_cache_filename(bucket)
        tmp = f"{name}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as handle:
                bucket.write_bytecode(handle)
            os.replace(tmp, name)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    if os.environ.get("REGAUTH_NO_CACHE") == "1":
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = Path(base) / "regauth" / f"jinja-{__version__}"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None  # read-only home, odd HOME in CI: just compile every time
    return _BytecodeCache(str(directory))


def _comment(value: object) -> str:
    # Keep any value on one comment line: a newline would end the comment and
    # turn the rest into live YAML/HCL/shell.
    return " ".join(str(value).split())


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # outputs are YAML, HCL, shell and systemd units, not HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_bytecode_cache(),
    )
    env.filters["comment"] = _comment
    return env


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(**context)


def preload() -> None:
    """Compile every template now, so forked workers inherit them ready-made."""
    env = environment()
    for name in env.list_templates(filter_func=lambda n: n.endswith(".j2")):
        env.get_template(name)
