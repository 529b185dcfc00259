"""The one catalogue of messages: every problem a user can see, by a stable code.

In the style of Butane's ``config/common/errors.go``: each problem is a named
:class:`Message` with a kebab-case ``code`` (a contract: scripts read it from
``--json``, tests assert it, the node prints it), a one-line ``title`` (the README
table is generated from it: ``regauth catalogue``), and the templates of its
message and fix (``str.format`` fields, filled by the caller with names, hosts and
paths, never a secret).  The entries live in one module per audience:

* :mod:`.inputs`: bad input to validate/render/verify (profiles, secrets, options);
* :mod:`.runtime`: runtime failures (I/O, Secret Manager);
* :mod:`.findings`: what doctor finds in a node's files;
* :mod:`.pasted`: what doctor reads from a pasted runtime error (``--error``);
* :mod:`.results`: what ``verify`` found for each registry;
* :mod:`.node`: why the node program (``regauth-apply``) failed.

This module imports only the standard library and :mod:`generator.errors` (lazily),
so every layer may use it.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from generator.errors import Problem

KINDS = ("input", "runtime", "finding", "pasted", "verify", "node")
# Names a template may not use: they are the arguments that place a problem.
_PLACING = {"file", "path", "line", "col", "severity", "at_key", "msg", "self"}
CATALOGUE: dict[str, "Message"] = {}


@dataclass(frozen=True)
class Message:
    code: str
    kind: str  # one of KINDS: who reports it
    title: str  # one line: what is wrong (the README table)
    # The message template ("" when the reporter writes the text itself).  Not in repr:
    # the hygiene test treats every field named like text as possibly secret-bearing.
    text: str = field(default="", repr=False)
    fix: str = ""  # the fix template
    severity: str = "error"  # default severity ("warning": works today, breaks later)

    def format(self, **params: object) -> tuple[str, str]:
        """The message and fix with ``params`` filled in."""
        return self.text.format(**params), self.fix.format(**params)

    def problem(self, file: str, path: str = "", line: int = 0, col: int = 0, *, severity: str = "", **params: object) -> "Problem":
        """A located :class:`~generator.errors.Problem` saying this."""
        from generator.errors import Problem

        message, fix = self.format(**params)
        return Problem(file, message, fix, path, line, col, severity or self.severity, code=self.code)

    def fields(self) -> set[str]:
        return {f for t in (self.text, self.fix) for _, f, _, _ in string.Formatter().parse(t) if f}


def entry(code: str, kind: str, title: str, text: str = "", fix: str = "", severity: str = "error") -> Message:
    """Register one message; a code is defined once, in kebab-case."""
    assert kind in KINDS, kind
    assert code not in CATALOGUE, f"code {code} defined twice"
    assert code == code.lower() and " " not in code and "_" not in code, code
    msg = Message(code, kind, title, text, fix, severity)
    assert not msg.fields() & _PLACING, f"{code}: template field named like a placing argument"
    CATALOGUE[code] = msg
    return msg


def codes(kind: str) -> dict[str, str]:
    """code -> title of every message of one kind, in definition order."""
    load()
    return {m.code: m.title for m in CATALOGUE.values() if m.kind == kind}


def lookup(code: str) -> Message | None:
    load()
    return CATALOGUE.get(code)


def load() -> None:
    """Import every catalogue module (each registers its entries on import)."""
    from generator.messages import findings, inputs, node, pasted, results, runtime  # noqa: F401


def readme_table() -> str:
    """The README's list of problems (between its catalogue markers), from the catalogue."""
    load()
    heads = {
        "input": "Bad input (`validate`, `render`, `verify`; exit 2)",
        "runtime": "Runtime failures (`render`, `validate`, `verify`; exit 1)",
        "finding": "Found in a node's files (`doctor`)",
        "pasted": "Read from a pasted runtime error (`doctor --error`)",
        "verify": "What `verify` found for each registry (`--json`: `registries[].code`; exit 1 when one failed)",
        "node": "Why the node program failed (`regauth-apply: FAILED [code] ...`, exit 1)",
    }
    out = []
    for kind in KINDS:
        out += [f"**{heads[kind]}**", "", "| code | what |", "|---|---|"]
        out += [f"| `{m.code}` | {m.title.replace('|', '/')} |" for m in CATALOGUE.values() if m.kind == kind]
        out.append("")
    return "\n".join(out).rstrip() + "\n"
