"""What doctor reports: one :class:`Finding` per problem, located, explained and fixable.

A finding says *what* is wrong, *why* that breaks pulls and the exact *fix*, and
carries a stable ``code`` so scripts (``--json``) and tests can tell findings apart
without parsing prose.  Headline, location and fix are formatted like every other
regauth :class:`~generator.errors.Problem`.  Messages name keys, hosts and files,
never a credential value: callers pass descriptions of damage, not payloads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from generator.errors import Problem
from generator.messages import codes
from generator.messages.inputs import DOCTOR_UNREADABLE as UNREADABLE

# Every code doctor can emit, with a one-line title: the catalogue's "finding" entries
# (generator/messages/findings.py; `regauth doctor --json` consumers and the README table
# use them; tests assert that each code is exercised).
CODES: dict[str, str] = codes("finding")


@dataclass(frozen=True)
class Finding:
    """One problem in one file, at one line."""

    code: str
    file: str
    message: str  # what is wrong
    why: str  # why it breaks pulls (or startup)
    fix: str  # the exact change to make
    line: int = 0
    col: int = 0
    path: str = ""  # key path inside the file, as the runtime spells it
    severity: str = "error"  # or "warning": works today, breaks on upgrade

    def __post_init__(self) -> None:
        assert self.code in CODES, self.code

    def problem(self) -> Problem:
        return Problem(self.file, self.message, self.fix, self.path, self.line, self.col, self.severity, code=self.code)

    def render(self) -> str:
        p = self.problem()
        head = f"{p.where()}: {self.severity}: [{self.code}] "
        if self.path:
            head += f"{self.path}: "
        text = head + self.message
        if self.why:
            text += "\n  why: " + self.why.replace("\n", "\n       ")
        if self.fix:
            text += "\n  fix: " + self.fix.replace("\n", "\n       ")
        return text

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, **self.problem().as_dict(), "why": self.why}


@dataclass
class FileReport:
    """What was read from one file and what is wrong in it."""

    file: str  # as shown to the user (relative to the walked root when walking)
    kind: str  # containerd | microk8s | k3s | docker | containers-auth | kubelet
    findings: list[Finding] = field(default_factory=list)
    credentials: int = 0  # registry credential entries seen (for the summary)
    hosts: dict[str, int] = field(default_factory=dict)  # host keys with a usable credential -> line
    notes: list[str] = field(default_factory=list)  # facts that are not problems (e.g. "fetched at boot")
    boot_hosts: set[str] = field(default_factory=set)  # hosts whose password regauth-apply fetches at boot
    node_path: str = ""  # where the file sits on the node, when a node tree was read

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "kind": self.kind, "credentials": self.credentials, "findings": len(self.findings),
                "hosts": sorted(self.hosts), "notes": list(self.notes)}


@dataclass(frozen=True)
class Unreadable:
    """An input doctor could not read at all (exit 2)."""

    file: str
    reason: str
    fix: str = ""

    def render(self) -> str:
        text = f"{self.file}: cannot read: {self.reason}"
        return text + (f"\n  fix: {self.fix}" if self.fix else "")

    def as_dict(self) -> dict[str, str]:
        return {"code": UNREADABLE.code, "file": self.file, "reason": self.reason, "fix": self.fix}
