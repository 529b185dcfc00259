"""The Jinja environment: layout only, never a place where secrets are spliced.

StrictUndefined turns a typo in a template into an error instead of an empty
string.  Values from profiles are data: they are passed in as variables and go
through filters; a profile string like ``{{ 7*7 }}`` is never evaluated.
"""

from __future__ import annotations

from functools import lru_cache

import jinja2

from generator.applyscript import templates_dir


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
    )
    env.filters["comment"] = _comment
    return env


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(**context)
