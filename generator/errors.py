"""The error types; their words and codes live in the catalogue (:mod:`generator.messages`).

Every failure a user can see is raised as a subclass of :class:`RegauthError`,
which carries the exit code the CLI returns.  Bad input (exit 2) is reported as a
list of :class:`Problem` so users get all their mistakes at once; runtime failures
(exit 1) say the cause and the fix.  Nothing here ever formats a secret value:
callers pass names (secret ids, hosts, paths), never payloads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_INVALID = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input, located as precisely as we can."""

    file: str
    message: str
    fix: str = ""
    path: str = ""  # YAML path such as registries[0].host
    line: int = 0  # 1-based; 0 = unknown
    col: int = 0  # 1-based; 0 = unknown
    severity: str = "error"  # or "warning"
    code: str = ""  # the stable code of its entry in generator.messages ("" only for legacy callers)

    def __post_init__(self) -> None:
        # The one place every problem passes: a key pasted where a name belongs is
        # quoted by whichever check rejects it, so it is caught here, never printed.
        message, fix, path = _without_keys(self.message, self.fix, self.path)
        if (message, fix, path) != (self.message, self.fix, self.path):
            object.__setattr__(self, "message", message)
            object.__setattr__(self, "fix", fix)
            object.__setattr__(self, "path", path)

    def where(self) -> str:
        loc = self.file
        if self.line:
            loc += f":{self.line}"
            if self.col:
                loc += f":{self.col}"
        return loc

    def render(self) -> str:
        head = f"{self.where()}: {self.severity}: "
        if self.code:
            head += f"[{self.code}] "
        if self.path:
            head += f"{self.path}: "
        text = head + self.message
        if self.fix:
            text += "\n  fix: " + self.fix.replace("\n", "\n       ")
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "path": self.path,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
        }


def _without_keys(message: str, fix: str, path: str = "") -> tuple[str, str, str]:
    """``message``, ``fix`` and ``path`` with key material replaced (see core.keylike)."""
    from generator.core.keylike import KEY_FIX, KEY_HINT, redact

    message, in_message = redact(message)
    fixed, in_fix = redact(fix)
    path, in_path = redact(path)
    if not (in_message or in_fix or in_path):
        return message, fix, path
    # A fix that quoted the key (e.g. an example built from it) is replaced, not patched.
    return f"{message} ({KEY_HINT})", KEY_FIX if in_fix or not fix else fix, path


def render_problems(problems: list[Problem]) -> str:
    """Every distinct problem; the same message in many files is shown once with a count,
    so a fleet run with one shared mistake (or one shared warning) stays readable."""
    groups: dict[tuple[str, ...], list[Problem]] = {}
    for p in problems:
        # An error is grouped only with the identical error.  A warning's message names
        # per-profile details (hosts, secrets) while its advice does not, so warnings
        # group on advice and place: a fleet of 5,000 profiles without
        # output.packer.bake_secret gets one warning and a count, not 5,000.
        key = (p.severity, p.fix, p.path) + ((p.message,) if p.severity == "error" else ())
        groups.setdefault(key, []).append(p)
    lines = []
    for same in groups.values():
        text = same[0].render()
        if len(same) > 1:
            others = ", ".join(p.where() for p in same[1:4])
            more = f" and {len(same) - 4} more" if len(same) > 4 else ""
            text += f"\n  (the same {same[0].severity} in {len(same) - 1} other place(s): {others}{more})"
        lines.append(text)
    return "\n".join(lines)


class RegauthError(Exception):
    """Base of every error the CLI turns into a message and an exit code."""

    exit_code = EXIT_RUNTIME

    def render(self) -> str:
        return str(self)


class InvalidInput(RegauthError):
    """The user's input is wrong; exit 2 with every problem listed."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: list[Problem]):
        self.problems = [p for p in problems if p.severity == "error"] or problems
        super().__init__(f"{len(self.problems)} problem(s) in the input")

    def render(self) -> str:
        return render_problems(self.problems)


@dataclass
class RuntimeFailure(RegauthError):
    """Something outside the input failed (I/O, network, permissions); exit 1."""

    cause: str
    fix: str = ""
    exit_code: int = field(default=EXIT_RUNTIME)
    code: str = ""  # the stable code of its entry in generator.messages.runtime

    def __post_init__(self) -> None:
        self.cause, self.fix, _ = _without_keys(self.cause, self.fix)
        super().__init__(self.cause)

    def render(self) -> str:
        text = f"error: [{self.code}] {self.cause}" if self.code else f"error: {self.cause}"
        if self.fix:
            text += "\n  fix: " + self.fix.replace("\n", "\n       ")
        return text


class SecretUnavailable(RuntimeFailure):
    """A secret source could not deliver (network, permission, missing credentials)."""


class OutputTooLarge(InvalidInput):
    """Rendered output exceeds a size limit the profile asked us to respect."""
