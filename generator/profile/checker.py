"""The validation walker shared by the profile loader and every target's option parser.

Every method appends a located :class:`~generator.errors.Problem` instead of raising,
so users get all their mistakes in one run.
"""

from __future__ import annotations

from typing import Any

from generator.errors import Problem
from generator.messages import Message
from generator.messages import inputs as M
from generator.profile.model import Located
from generator.yamlpos import LoadedYaml, format_path
from generator.core.keylike import looks_like_key
from generator.core.suggest import close_match


class Checker:
    """Walks the loaded YAML; every method appends Problems instead of raising."""

    def __init__(self, loaded: LoadedYaml, filename: str):
        self.y = loaded
        self.file = filename
        self.problems: list[Problem] = list(loaded.problems)

    def at(self, path: tuple, *, key: bool = False) -> Located:
        line, col = self.y.loc(path + ("<key>",)) if key else self.y.loc(path)
        return Located(self.file, line, col, format_path(path))

    def report(self, msg: Message, path: tuple, *, at_key: bool = False, severity: str = "", **params: object) -> None:
        """Add the catalogue's ``msg`` (its templates filled with ``params``) at ``path`` (at its key: ``at_key``)."""
        line, col = self.y.loc(path + ("<key>",)) if at_key else self.y.loc(path)
        self.problems.append(msg.problem(self.file, format_path(path), line, col, severity=severity, **params))

    def mapping(self, value: Any, path: tuple, what: str, example: str) -> dict | None:
        if isinstance(value, dict):
            return value
        self.report(M.NOT_MAPPING, path, what=what, kind=kind_of(value), example=example)
        return None

    def keys(self, mapping: dict, allowed: tuple[str, ...], path: tuple, required: tuple[str, ...] = ()) -> None:
        """Unknown keys (with did-you-mean), then required keys that are missing.

        A misspelled key is reported once: its value is then read under the meant
        name, so the check does not add "missing required key" for the same typo, and
        the value itself is still checked.
        """
        misspelled: dict[str, str] = {}
        for key in mapping:
            if key not in allowed:
                close = close_match(str(key), allowed)
                hint = f"did you mean '{close}'?" if close else f"allowed here: {', '.join(allowed)}"
                self.report(M.UNKNOWN_KEY, path + (key,), at_key=True, key=key, hint=hint)
                if close and close not in mapping and close not in misspelled.values():
                    misspelled[key] = close
        for key, meant in misspelled.items():
            mapping[meant] = mapping[key]
            self.y.locs[path + (meant,)] = self.y.loc(path + (key,))
        for key in required:
            if key not in mapping:
                self.report(M.MISSING_KEY, path, key=key)

    def source_text(self, path: tuple) -> str | None:
        """The value at ``path`` as written in the file (``1.10``, not the float 1.1)."""
        return self.y.texts.get(path)

    def string(self, mapping: dict, key: str, path: tuple, *, required: bool = True) -> str | None:
        if key not in mapping:
            return None
        value = mapping[key]
        if looks_like_key(value):
            self.report(M.KEY_AS_VALUE, path + (key,), key=key, value=value)  # Problem shows a description, not the value
            return None
        if isinstance(value, str) and value:
            return value
        self.report(M.NOT_STRING, path + (key,), kind=kind_of(value), key=key)
        return None

    def choice(self, mapping: dict, key: str, path: tuple, choices: tuple[str, ...], default: str) -> str:
        if key not in mapping:
            return default
        value = mapping[key]
        if value in choices:
            return value
        close = close_match(str(value), choices)
        hint = f"did you mean '{close}'?" if close else f"write one of: {', '.join(choices)}"
        self.report(M.BAD_CHOICE, path + (key,), value=value, hint=hint, key=key)
        # A near miss is read as what was meant (the profile is invalid either way), so
        # the rest is still checked, e.g. the key of `type: gcp-servce-account`.
        return close or default


def kind_of(value: Any) -> str:
    if value is None:
        return "empty"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(type(value), type(value).__name__)
