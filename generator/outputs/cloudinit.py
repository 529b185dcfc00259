"""cloud-init user-data: ``write_files`` for every delivered file, then the apply step.

The cloud-config body is produced by PyYAML's safe dumper from a plain dict, and
every file's content is base64 (``encoding: b64``, or ``gz+b64`` when gzip makes it
smaller: the apply script shrinks to a third, which keeps user-data under AWS's 16 KB),
so no value from a profile or a secret is ever spliced into YAML text.  ``permissions`` is a quoted string ('0600'):
unquoted YAML 0600 is the integer 384.  The apply step runs from ``runcmd`` as an
argv list with no arguments that could carry a secret.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from collections.abc import Collection

import yaml

from generator import __version__, applyscript, nodebuild
from generator.targets.base import NodeFile
from generator.outputs.templating import render
from generator.outputs.userdata import deterministic_gzip

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def write_file_entry(f: NodeFile) -> dict[str, str]:
    packed = deterministic_gzip(f.data)
    encoding, payload = ("gz+b64", packed) if len(packed) < len(f.data) else ("b64", f.data)
    return {
        "path": f.path,
        "owner": f.owner,
        "permissions": f"{f.mode:04o}",
        "encoding": encoding,
        "content": base64.b64encode(payload).decode("ascii"),
    }


def _run_baked(program: str) -> str:
    from generator.messages.node import PROGRAM_MISSING

    message, fix = PROGRAM_MISSING.format(program=program)
    line = f"regauth-apply: FAILED [{PROGRAM_MISSING.code}] {message}; {fix}"
    return f"if [ -x {program} ]; then exec {program}; fi; echo {shlex.quote(line)} >&2; exit 1"


def _fetch_then_run(url: str, program: bytes) -> str:
    """output.program: url: fetch regauth-apply (node/programfetch.py, run as ``python3
    -c``), which must have ``program``'s SHA-256, then run it: runcmd's last line, so a
    failure of either is cloud-init's."""
    from generator.messages.node import PROGRAM_FETCH

    from generator.node.main import FETCH_TIMEOUT

    argv = ["/usr/bin/python3", "-c", nodebuild.standalone("programfetch"), url, hashlib.sha256(program).hexdigest(),
            applyscript.VM_PATH, "%g" % FETCH_TIMEOUT, PROGRAM_FETCH.fix]
    return " ".join(shlex.quote(a) for a in argv) + f" && {applyscript.VM_PATH}"


def cloud_config(profile_name: str, profile_file: str, hosts: list[str], files: list[NodeFile], baked: Collection[str] = (),
                 program_url: str | None = None) -> bytes:
    """``baked``: the paths the image already has (``output.program: image``; packer's
    ``baked_files``): user-data delivers every other file (then only the plan: 1.3 KB
    with fetch: boot, ~4 KB with a key) and runs the image's program.  ``program_url``
    (``output.program: url``): user-data fetches the program from there instead of
    carrying it, checked against the program in ``files``."""
    fetched = {applyscript.VM_PATH} if program_url else set()
    delivered = [f for f in files if f.delivered and f.path not in baked and f.path not in fetched]
    from generator.outputs.refresh import TIMER_NAME, TIMER_PATH

    if program_url:
        program = next(f.data for f in files if f.path == applyscript.VM_PATH)
        runcmd: list[object] = [_fetch_then_run(program_url, program)]
    elif baked:
        # The image's regauth-apply.service has applied the plan before the runtime
        # started (cloud-init writes files before network-online.target); running it again
        # here is a no-op, or the first apply where the unit came too early.  An image
        # built without the snippet gets one line saying so, not "command not found".
        runcmd = [_run_baked(applyscript.VM_PATH)]
    else:
        runcmd = [[applyscript.VM_PATH]]
    if any(f.path == TIMER_PATH for f in delivered):
        # enable works without a running systemd (image builds, containers); start only
        # where systemd is PID 1 (/run/systemd/system, sd_booted's test), else the
        # timer starts with timers.target at the next boot.
        # Before the apply: runcmd is one sh script whose exit status is its last line's,
        # so the apply goes last and its failure is cloud-init's (status: error); the
        # timer's first run is OnBootSec (>= the refresh interval) after boot anyway.
        runcmd.insert(0, f"systemctl enable {TIMER_NAME} && if [ -d /run/systemd/system ]; then systemctl start {TIMER_NAME}; fi")
    body = {
        "write_files": [write_file_entry(f) for f in delivered],
        "runcmd": runcmd,
    }
    text = yaml.dump(body, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1 << 20)
    return render(
        "cloud-config.yaml.j2",
        regauth_version=__version__,
        profile=profile_name,
        profile_file=profile_file,
        hosts=hosts,
        holds_secret=any(f.secret for f in delivered),
        body=text.rstrip("\n"),
    ).encode("utf-8")
