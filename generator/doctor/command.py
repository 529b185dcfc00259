"""``regauth doctor``: find the files, run each kind's checker, report, pick the exit code.

Exit codes: 0 nothing wrong (warnings may be printed), 1 problems found, 2 an input
could not be read (missing, permission denied, not a config doctor knows).  With
``--error`` alone: 0 when the text was explained, 1 when it was not recognised.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from types import ModuleType

from generator.doctor import authjson, containerd, k3s, plan, provider, runtimes
from generator.doctor.discover import find, follow_imports, set_releases
from generator.doctor.connect import connect
from generator.doctor.errors_explain import Reading, explain, render
from generator.doctor.findings import FileReport, Finding, Unreadable
from generator.core.imageref import BadReference, ImageRef, parse_image
from generator.doctor.source import Options, Source
from generator.errors import EXIT_INVALID, EXIT_OK, EXIT_RUNTIME

CHECKERS: dict[str, ModuleType] = {
    "containerd": containerd,
    "microk8s": containerd,
    "k3s": k3s,
    "docker": authjson,
    "containers-auth": authjson,
    "kubelet": authjson,
    "kubelet-provider": provider,
}


def check_sources(sources: list[Source], image: ImageRef | None, roots: list[tuple[Path, str]] | None = None,
                  found: list[Finding] | None = None) -> list[FileReport]:
    """Run every source through its kind's checker (the library entry point tests use).

    ``roots`` are the node trees the sources came from (``find().roots``): there,
    ``--image`` is judged per runtime on the files that runtime reads
    (:mod:`generator.doctor.runtimes`); named files are judged one by one.  ``found``:
    findings made while discovering (``find().findings``), each added to its file's report.
    """
    options = Options(image=image)
    reports = [(plan if src.step is not None else CHECKERS[src.kind]).check(src, options) for src in sources]
    for src, report in zip(sources, reports):
        report.node_path = src.node_path
    for finding in found or []:
        next((r for r in reports if r.file == finding.file), reports[0]).findings.append(finding)
    judged = False
    for root, shown_root in roots or []:
        found = runtimes.detect(root)
        pairs = [(s, r) for s, r in zip(sources, reports) if s.node_path and _under(s.real, root)]
        if image is None or not found or not pairs:
            continue
        judged = True
        notes = runtimes.judge_image(shown_root, found, pairs, image)
        pairs[0][1].notes.extend(notes)
    # Files without any credential say nothing about --image; when no file has one, say it once.
    if image is not None and not judged and reports and not any(r.credentials or r.hosts for r in reports):
        first = reports[0]
        first.findings.append(
            Finding("image-host", first.file, f"none of the {len(reports)} file(s) checked holds any registry credentials, so nothing covers {image.host}",
                    f"the runtime finds no credential for {image.text}, so the pull goes anonymous ('failed to fetch anonymous token')",
                    f"add credentials for {image.host} to the runtime's config (regauth render writes them)")
        )
    for src, report in zip(sources, reports):
        report.findings[:] = [_with_column(f, src.text) if f.file == src.shown else f for f in report.findings]
        report.findings.sort(key=lambda f: (f.line, f.code))
    return reports


def _under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _with_column(finding: Finding, text: str) -> Finding:
    """Give a located finding a real 1-based column: where its line's key or header starts.

    Checkers know lines (positions come from scanning text the parser accepted); the
    first non-blank character of that line is where the key, ``[table]`` or JSON key
    the finding is about begins.  Parser errors keep the column the parser gave.
    """
    if finding.col or finding.line <= 0:
        return finding
    lines = text.splitlines()
    if finding.line > len(lines):
        return finding
    line = lines[finding.line - 1]
    return dataclasses.replace(finding, col=len(line) - len(line.lstrip()) + 1)


def run(args: argparse.Namespace) -> int:
    image: ImageRef | None = None
    unreadable: list[Unreadable] = []
    if args.image:
        try:
            image = parse_image(args.image)
        except BadReference as exc:
            unreadable.append(Unreadable("--image", str(exc)))
    reading: Reading | None = None
    if args.error is not None:
        text = sys.stdin.read() if args.error == "-" else args.error
        if not text.strip():
            unreadable.append(Unreadable("--error", "the error text is empty", "paste the whole error line in quotes, or pass --error - and pipe it in"))
        else:
            reading = explain(text)
            if image is None and reading.image is not None:
                image = reading.image
    if not args.paths and args.error is None and not unreadable:
        print("regauth doctor: nothing to check: name files or directories (e.g. regauth doctor /etc), or pass --error TEXT", file=sys.stderr)
        return EXIT_INVALID
    found = find(args.paths, forced_kind=args.as_kind)
    set_releases(found, args.containerd_version)
    follow_imports(found)
    unreadable += found.unreadable
    reports = check_sources(found.sources, image, found.roots, found.findings) if found.sources else []
    findings = [f for r in reports for f in r.findings]
    errors = [f for f in findings if f.severity == "error"]
    if args.json:
        doc: dict[str, object] = {
            "ok": not errors and not unreadable,
            "files": [r.as_dict() for r in reports],
            "findings": [f.as_dict() for f in findings],
            "unreadable": [u.as_dict() for u in unreadable],
        }
        if image is not None:
            doc["image"] = {"text": image.text, "registry": image.registry, "host": image.host}
        if reading is not None:
            doc["error"] = {**reading.as_dict(), "files": connect(reading, reports)}
        print(json.dumps(doc, indent=2))
    else:
        _print_text(reports, findings, unreadable, reading, found.notes)
    if unreadable:
        return EXIT_INVALID
    if errors:
        return EXIT_RUNTIME
    if reading is not None and not args.paths:
        return EXIT_OK if reading.explanations else EXIT_RUNTIME
    return EXIT_OK


def _print_text(reports: list[FileReport], findings: list[Finding], unreadable: list[Unreadable], reading: Reading | None, notes: list[str]) -> None:
    if reading is not None:
        print(render(reading))
        if reports:
            print()
    for f in findings:
        print(f.render())
    if reading is not None:
        tied = connect(reading, reports)
        if tied:
            print(("\n" if findings else "") + "\n".join(tied))
    for r in reports:
        for note in r.notes:
            print("note: " + note)
    for u in unreadable:
        print("regauth doctor: " + u.render(), file=sys.stderr)
    for note in notes:
        print("regauth doctor: note: " + note, file=sys.stderr)
    if not reports:
        return
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    checked = ", ".join(f"{r.file} ({r.kind}" + (f", standing in for {r.node_path}" if r.file.endswith("plan.json") and r.node_path else "") + ")" for r in reports)
    verdict = "no problems found" if not findings else f"{errors} error(s), {warnings} warning(s)"
    print(f"{'' if not findings else chr(10)}regauth doctor: checked {len(reports)} file(s): {checked}: {verdict}")
