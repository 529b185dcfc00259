"""kubelet's two credential-provider flags, written where each distribution reads them.

kubelet reads ``--image-credential-provider-config`` and
``--image-credential-provider-bin-dir`` only from its command line, and each way of
running kubelet builds that line from its own file:

- kubeadm: ``/etc/default/kubelet`` (``KUBELET_EXTRA_ARGS``), the file kubeadm's
  documentation gives users for extra flags; its ``10-kubeadm.conf`` drop-in reads it
  as an ``EnvironmentFile`` after everything else.  A drop-in of our own with
  ``Environment=KUBELET_EXTRA_ARGS=...`` would be overridden by that file whenever the
  user sets the variable there, so regauth merges into the file instead;
- MicroK8s: ``/var/snap/microk8s/current/args/kubelet``, one ``--flag=value`` per line;
- k3s / RKE2: ``kubelet-arg`` (a list of ``name=value``) in ``/etc/rancher/*/config.yaml``.

Each merge replaces only our two flags (any earlier value of them included) and keeps
every other flag, line and key; the same input gives the same bytes, so a second run
changes nothing and restarts nothing.
"""

import json
import os
import re
import shlex
from typing import Dict, List, Optional, Tuple

from .documents import dump_document, load_document
from .errors import ApplyError

CONFIG_FLAG = "image-credential-provider-config"
BIN_DIR_FLAG = "image-credential-provider-bin-dir"
MICROK8S_ARGS = "/var/snap/microk8s/current/args/kubelet"

# distribution -> (file, restart spec for files.restart_units)
DISTRIBUTIONS = {
    "kubeadm": ("/etc/default/kubelet", {"units": ["kubelet"]}),
    "microk8s": (MICROK8S_ARGS, {"units": ["snap.microk8s.daemon-kubelite"], "command": ["snap", "restart", "microk8s.daemon-kubelite"]}),
    "k3s": ("/etc/rancher/k3s/config.yaml", {"units": ["k3s", "k3s-agent"]}),
    "rke2": ("/etc/rancher/rke2/config.yaml", {"units": ["rke2-server", "rke2-agent"]}),
}
_EXTRA = re.compile(r"^(\s*)(export\s+)?KUBELET_EXTRA_ARGS=(.*)$")
_PLAIN = re.compile(r"^[A-Za-z0-9_./:=@%+,-]+$")


def detect(root: str) -> str:
    """Which distribution runs kubelet on this node (``auto``)."""
    if os.path.exists(root + MICROK8S_ARGS) or os.path.exists(root + "/snap/microk8s"):
        return "microk8s"
    for name in ("rke2", "k3s"):
        if os.path.isdir(root + "/etc/rancher/" + name) or any(os.path.exists(root + d + "/" + name) for d in ("/usr/local/bin", "/usr/bin", "/opt/rke2/bin")):
            return name
    return "kubeadm"


def flags(config: str, bin_dir: str) -> Dict[str, str]:
    for value in (config, bin_dir):
        if not _PLAIN.match(value):
            raise ApplyError("%r cannot be written as a kubelet flag value (spaces, quotes or shell characters); use a plain path" % value, code="node-cannot-merge")
    return {CONFIG_FLAG: config, BIN_DIR_FLAG: bin_dir}


def _is_ours(args: List[str], names: Dict[str, str]) -> List[bool]:
    """For each of ``args``: is it (part of) a ``--NAME=VALUE`` / ``--NAME VALUE`` of ours (leading dashes optional)?"""
    out, skip = [], False
    for arg in args:
        bare = arg.lstrip("-")
        out.append(skip or bare in names or bare.split("=", 1)[0] in names)
        skip = not skip and bare in names  # the value is the next argument
    return out


def _without(args: List[str], names: Dict[str, str]) -> List[str]:
    """``args`` minus every flag of ours (:func:`_is_ours`)."""
    return [arg for arg, ours in zip(args, _is_ours(args, names)) if not ours]


def merge_default_kubelet(existing: Optional[str], wanted: Dict[str, str], shown: str) -> str:
    """``KUBELET_EXTRA_ARGS="..."`` with our flags appended; other lines kept as they are."""
    lines = (existing or "").splitlines()
    ours = ["--%s=%s" % item for item in sorted(wanted.items())]
    for i in reversed(range(len(lines))):  # the shell (and systemd) keep the last assignment
        line = lines[i]
        m = _EXTRA.match(line)
        if not m:
            continue
        try:
            # The shell's (or systemd's EnvironmentFile) quoting first, then the whitespace
            # split that ExecStart's unquoted $KUBELET_EXTRA_ARGS makes.
            args = " ".join(shlex.split(m.group(3), comments=True)).split()
        except ValueError:
            raise ApplyError("%s: KUBELET_EXTRA_ARGS is not a value regauth can read (unbalanced quotes); fix the line" % shown, code="node-config-syntax")
        if any("$" in a or "`" in a for a in args):
            raise ApplyError("%s: KUBELET_EXTRA_ARGS uses shell expansion, which regauth cannot merge into; add %s by hand" % (shown, " ".join(ours)), code="node-cannot-merge")
        merged = _without(args, wanted) + ours
        lines[i] = '%s%sKUBELET_EXTRA_ARGS="%s"' % (m.group(1), m.group(2) or "", " ".join(merged))
        break
    else:
        lines.append('KUBELET_EXTRA_ARGS="%s"' % " ".join(ours))
    return "\n".join(lines) + "\n"


def merge_microk8s_args(existing: Optional[str], wanted: Dict[str, str]) -> str:
    """One ``--flag=value`` per line, ours replacing any earlier line of the same flag."""
    kept = [line for line in (existing or "").splitlines() if _without(line.split(), wanted) == line.split()]
    return "\n".join(kept + ["--%s=%s" % item for item in sorted(wanted.items())]) + "\n"


def merge_rancher_config(existing: Optional[str], wanted: Dict[str, str], shown: str) -> str:
    """``kubelet-arg: [name=value, ...]`` in k3s / RKE2 config.yaml, other keys kept.

    A YAML file is edited in place: only the ``kubelet-arg`` entries of ours change
    (appended after the user's, earlier values of our flags dropped), every other byte
    stays, comments included.  The result must read back (PyYAML) as the old document
    with exactly that change, else nothing is written.  A JSON file (what regauth writes
    where there was none) is rewritten as JSON, which has no comments to lose."""
    ours = ["%s=%s" % item for item in sorted(wanted.items())]
    text = existing or ""
    doc = load_document(existing, shown)  # YAML needs python3-yaml: it proves the edit below
    current = doc.get("kubelet-arg")
    if current is None:
        current = []
    elif isinstance(current, str):
        current = [current]
    elif not isinstance(current, list) or not all(isinstance(a, str) for a in current):
        raise ApplyError("%s: kubelet-arg is not a list of strings; fix or remove it" % shown, code="node-config-shape")
    expected = dict(doc, **{"kubelet-arg": _without(current, wanted) + ours})
    if not text.strip() or text.lstrip().startswith("{"):
        # A new file is JSON too: the next run reads it back without python3-yaml.
        return dump_document(expected, shown).decode("utf-8")
    new = _edit_kubelet_arg(text, wanted, ours, shown)
    import yaml  # load_document needed it for this file already

    try:
        again = yaml.safe_load(new)
    except yaml.YAMLError:
        again = None
    if again != expected:
        raise ApplyError("%s: adding kubelet-arg in place would not read back as intended (an unusual YAML layout); nothing was "
                         "written: add %s under kubelet-arg by hand" % (shown, ", ".join(ours)), code="node-self-check")
    return new


_ARG_KEY = re.compile(r"""^(?:kubelet-arg|"kubelet-arg"|'kubelet-arg')[ \t]*:(?:[ \t]+(.*?))?[ \t]*$""")
_ITEM = re.compile(r"^([ \t]*)-(?:[ \t]+(.*?))?[ \t]*$")
_SINGLE = re.compile(r"^'((?:[^']|'')*)'$")
_FLOW_ITEM = re.compile(r"""\s*("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^,\[\]{}#'"\s][^,\[\]{}#]*?)\s*(,|$)""")


def _split_comment(raw: str) -> Tuple[str, str]:
    """(value text, comment with the blanks before it): a '#' after a blank, outside quotes."""
    quote = ""
    for i, c in enumerate(raw):
        if quote:
            if c == quote and not (quote == '"' and raw[i - 1] == "\\"):
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or raw[i - 1] in " \t"):
            value = raw[:i].rstrip()
            return value, raw[len(value):]
    return raw, ""


def _scalar(raw: str) -> Optional[str]:
    """The string a one-line YAML scalar (plain, 'single' or "double" quoted; no comment)
    stands for; None for anything else (flow, anchors, tags, block scalars, mappings)."""
    if raw.startswith('"'):
        try:
            value, end = json.JSONDecoder().raw_decode(raw)
        except ValueError:
            return None
        return value if isinstance(value, str) and end == len(raw) else None
    m = _SINGLE.match(raw)
    if m:
        return m.group(1).replace("''", "'")
    if not raw or raw[0] in "[]{}#&*!|>%@`,'\"" or (raw[0] in "?:-" and raw[1:2] in ("", " ", "\t")):
        return None
    return None if ": " in raw or raw.endswith(":") else raw


def _edit_kubelet_arg(text: str, wanted: Dict[str, str], ours: List[str], shown: str) -> str:
    """``text`` with ``kubelet-arg`` holding ours; every other line as it was."""
    lines = text.splitlines(True)
    keys = [i for i, line in enumerate(lines) if _ARG_KEY.match(line.rstrip("\r\n"))]
    if len(keys) > 1:
        raise ApplyError("%s: kubelet-arg appears %d times (lines %s); keep one" % (shown, len(keys), ", ".join(str(i + 1) for i in keys)), code="node-config-shape")
    quoted = [json.dumps(arg) for arg in ours]
    if not keys:
        head = text if not text or text.endswith("\n") else text + "\n"
        return head + "kubelet-arg:\n" + "".join("  - %s\n" % q for q in quoted)
    at = keys[0]
    end = lines[at][len(lines[at].rstrip("\r\n")):] or "\n"
    value, comment = _split_comment((_ARG_KEY.match(lines[at].rstrip("\r\n")).group(1) or "").strip())
    if value:  # on the key's line: a one-line flow list or a single string
        single = _scalar(value)
        # One string becomes a flow list: a plain one with , [ ] { } in it is quoted there.
        raw = _flow_items(value) if value.startswith("[") else [json.dumps(single) if single and any(c in value for c in ",[]{}") else value]
        values = [_scalar(r) for r in raw]
        if None in values:
            raise ApplyError("%s line %d: kubelet-arg is not a list regauth can edit in place (multi-line flow list, anchor, tag or "
                             "block scalar); nothing was written: write it with one - item per line" % (shown, at + 1), code="node-cannot-merge")
        kept = [r for r, drop in zip(raw, _is_ours(values, wanted)) if not drop]
        lines[at] = lines[at][:lines[at].index(":") + 1] + " [" + ", ".join(kept + quoted) + "]" + comment + end
        return "".join(lines)
    items, indent, j = [], None, at + 1
    while j < len(lines):
        line = lines[j].rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            j += 1
            continue
        m = _ITEM.match(line)
        if m and (indent is None or m.group(1) == indent):
            item = _scalar(_split_comment(m.group(2) or "")[0])
            if item is None:
                raise ApplyError("%s line %d: a kubelet-arg item that is not a one-line string; regauth edits only such items, "
                                 "nothing was written" % (shown, j + 1), code="node-cannot-merge")
            indent = m.group(1)
            items.append((j, item))
            j += 1
            continue
        if indent is not None and len(line) - len(line.lstrip()) > len(indent):
            raise ApplyError("%s line %d: a kubelet-arg item continues over several lines; write it on one line (nothing was written)"
                             % (shown, j + 1), code="node-cannot-merge")  # fmt: skip
        break
    drop = set(k for (k, _), gone in zip(items, _is_ours([v for _, v in items], wanted)) if gone)
    last = items[-1][0] if items else at
    prefix = (indent if indent is not None else "  ") + "- "
    added = ["%s%s%s" % (prefix, q, end) for q in quoted]
    return "".join(lines[:at + 1] + [l for k, l in enumerate(lines[at + 1:last + 1], at + 1) if k not in drop] + added + lines[last + 1:])


def _flow_items(value: str) -> List[str]:
    """The items of a one-line flow list ``[a, "b", 'c']`` as written."""
    if not value.endswith("]"):
        return [value]  # not one line: _scalar refuses it
    inner, raw, pos = value[1:-1].strip(), [], 0
    while pos < len(inner):
        m = _FLOW_ITEM.match(inner, pos)
        if not m or m.end() == pos:
            return [value]
        raw.append(m.group(1))
        pos = m.end()
    return raw


def merged(distribution: str, existing: Optional[str], wanted: Dict[str, str], shown: str) -> str:
    if distribution == "kubeadm":
        return merge_default_kubelet(existing, wanted, shown)
    if distribution == "microk8s":
        return merge_microk8s_args(existing, wanted)
    return merge_rancher_config(existing, wanted, shown)
