"""The ``regauth`` command line.  Heavy libraries are imported inside the commands
that need them, so ``regauth --help`` starts in a few tens of milliseconds."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from generator import __version__
from generator.errors import EXIT_INVALID, EXIT_OK, EXIT_RUNTIME, InvalidInput, RegauthError
from generator.messages import inputs as M
from generator.messages import runtime as R

EPILOG_MAIN = """\
examples:
  regauth render profiles/demo.yaml            # writes out/demo/{user-data,rootfs/,packer/,...}
  regauth render profiles/ -o build/           # every profile in a folder; the examples
                                               # in profiles/ need `make demo` (a throwaway
                                               # key) and REGAUTH_EXAMPLE_PASSWORD set (read
                                               # by profiles/private-ca-registry.yaml)
  regauth validate profiles/*.yaml             # check without fetching or writing
  regauth schema > profile.schema.json         # JSON Schema for editors
  regauth doctor /etc --image IMAGE            # why does this node's pull fail?
  regauth verify profiles/demo.yaml            # do the registries accept these credentials?

exit codes: 0 ok, 1 runtime failure (I/O, network, permissions), 2 invalid input,
141 stdout closed by its reader (e.g. | head)
"""

EPILOG_RENDER = """\
examples:
  regauth render profiles/demo.yaml
  regauth render profiles/demo.yaml -o - > user-data  # only the user-data, on stdout (one profile)
  regauth render profiles/demo.yaml --format terraform # JSON for Terraform's external data source
  regauth render profiles/prod-*.yaml -o /tmp/out
  regauth render profiles/demo.yaml --dry-run  # show what would be written, secrets masked
  regauth render profiles/demo.yaml --merge-with my-user-data.yaml

Each PROFILE writes DIR/NAME/ (NAME = file name without .yaml), replaced atomically:
  user-data      #cloud-config for new VMs (0600 when it holds credentials)
  rootfs/        every file the VM gets, at its path and with its mode
  packer/        HCL2 snippet + files for golden images (output.packer in the profile)
  manifest.json  path, mode, owner, sha256 and a secret flag per file (never a value)
"""

EPILOG_DOCTOR = """\
examples:
  sudo regauth doctor /etc                       # every runtime config found under /etc
  sudo regauth doctor / --image europe-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG
  regauth doctor out/demo/rootfs                 # what regauth render produced
  regauth doctor /etc/containerd/config.toml --json
  regauth doctor --error 'failed to fetch anonymous token: ... 401 Unauthorized'
  kubectl describe pod POD | regauth doctor --error -

Reads containerd config.toml (v1-v4), the MicroK8s containerd-template.toml,
k3s/RKE2 registries.yaml, Docker/Podman auth JSON and kubelet config.json, and
reports every problem with file:line, why it breaks pulls, and the fix.
exit codes: 0 no problems (warnings may be printed), 1 problems found,
2 an input could not be read; --error alone: 0 explained, 1 not recognised
"""

EPILOG_VERIFY = """\
examples:
  regauth verify profiles/demo.yaml
  regauth verify profiles/demo.yaml --image europe-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG
  regauth verify profiles/private.yaml --ca-file corp-ca.pem --timeout 5 --json
  regauth verify --provider /usr/local/sbin/regauth-credential-provider --image europe-docker.pkg.dev/P/R/I:T

For each registry: GET /v2/, the token request containerd makes (OAuth2 password
grant, then GET with Basic), and with --image a manifest HEAD.  Never prints secrets.
exit codes: 0 every registry OK, 1 a registry failed, 2 invalid profile
"""

EPILOG_VALIDATE = """\
examples:
  regauth validate profiles/demo.yaml
  regauth validate profiles/ --json

Checks structure, hosts and secret references, and reads file/env secrets to check
service-account keys (also in profiles with other errors: every problem of every
profile in one run), and gives the warnings render would.  Secret Manager secrets
are not fetched.
"""


def _profile_paths(items: list[str]) -> list[Path]:
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix in (".yaml", ".yml") and q.is_file())
            if not found:
                raise InvalidInput([M.FOLDER_NO_PROFILES.problem(item)])
            paths.extend(found)
        else:
            paths.append(p)
    return paths


NOTES_SHOWN = 10  # a fleet's notes (e.g. "user-data is gzip-compressed") beyond this are counted


def cmd_render(args: argparse.Namespace) -> int:
    import time

    from generator.progress import Progress
    from generator.render import render_all

    started = time.monotonic()
    to_stdout = _stdout_mode(args)
    output = args.output or "out"
    merge_with = [_read_user_data(name) for name in args.merge_with or []]
    paths = _profile_paths(args.profiles)
    if to_stdout and len(paths) != 1:
        raise InvalidInput([M.STDOUT_ONE_PROFILE.problem("-o -" if args.output == "-" else "--format terraform", count=len(paths))])
    with Progress(len(paths), "rendering") as progress:
        outcomes = render_all(
            paths,
            Path(output),
            write=not (args.dry_run or to_stdout),
            merge_with=merge_with,
            gsm_settings=_gsm_settings(args),
            jobs=args.jobs,
            progress=progress.advance,
        )
    from generator.errors import render_problems

    warnings = [w for o in outcomes for w in o.warnings]
    if warnings:
        print(render_problems(warnings), file=sys.stderr)
    notes = [f"{o.name}: {note}" for o in outcomes for note in o.notes]
    for note in notes[:NOTES_SHOWN]:
        print(note, file=sys.stderr)
    if len(notes) > NOTES_SHOWN:
        print(f"... and {len(notes) - NOTES_SHOWN} more such notes (each profile's manifest.json says whether its user-data is gzip)", file=sys.stderr)
    if to_stdout:
        from generator.outputs.stdout import terraform_result, user_data_bytes

        (outcome,) = outcomes
        assert outcome.rendered is not None
        if args.format == "terraform":
            sys.stdout.write(terraform_result(outcome.rendered))
        else:
            sys.stdout.buffer.write(user_data_bytes(outcome.rendered))
        if args.verbose:
            print(f"{outcome.name}: user-data written to stdout", file=sys.stderr)
        return EXIT_OK
    for outcome in outcomes:
        if args.dry_run and outcome.rendered is not None:
            _print_plan(outcome.rendered)
        elif args.verbose:
            print(f"{outcome.name}: wrote {Path(output) / outcome.name}/ ({outcome.files} files)", file=sys.stderr)
    if not args.dry_run:
        files = sum(o.files for o in outcomes)
        size = sum(o.size for o in outcomes)
        names = outcomes[0].name if len(outcomes) == 1 else f"{outcomes[0].name} ... {outcomes[-1].name}"
        print(
            f"rendered {len(outcomes)} profile(s) ({names}) into {output}/: {files} files, {size / 1e6:.1f} MB in {time.monotonic() - started:.2f}s",
            file=sys.stderr,
        )
    return EXIT_OK


def _stdout_mode(args: argparse.Namespace) -> bool:
    """True when the result goes to stdout (``-o -`` or ``--format terraform``), after
    refusing combinations that would make it ambiguous (exit 2)."""
    terraform = args.format == "terraform"
    if terraform and args.output not in (None, "-"):
        raise InvalidInput([M.TERRAFORM_OUTPUT.problem("--format terraform", output=args.output)])
    to_stdout = terraform or args.output == "-"
    if to_stdout and args.dry_run:
        raise InvalidInput([M.DRY_RUN_STDOUT.problem("--dry-run")])
    return to_stdout


def _gsm_settings(args: argparse.Namespace) -> object | None:
    if not any(getattr(args, f"gsm_{k}", None) is not None for k in ("timeout", "transport")) and "REGAUTH_GSM_ANONYMOUS" not in os.environ:
        return None  # keeps file-only renders from importing the Secret Manager bridge
    from generator.secrets.gsm_source import GsmSettings

    return GsmSettings.from_env(timeout_total=args.gsm_timeout, transport=args.gsm_transport)


def _read_user_data(name: str) -> tuple[str, bytes]:
    from generator.errors import RuntimeFailure

    try:
        return name, Path(name).read_bytes()
    except FileNotFoundError:
        raise InvalidInput([M.MERGE_WITH_MISSING.problem(name)]) from None
    except OSError as exc:
        raise RuntimeFailure(f"cannot read {name}: {exc.strerror}", "check the file's permissions", code=R.MERGE_WITH_UNREADABLE.code) from None


def _print_plan(rendered) -> None:  # type: ignore[no-untyped-def]
    print(f"{rendered.name}:")
    for step in rendered.steps:
        print(f"  step: {step.summary}")
    for f in rendered.files:
        flag = "  [secret, masked]" if f.secret else ""
        print(f"  {f.relpath:<48} {f.mode:04o} {len(f.data):>7} bytes{flag}")


def cmd_validate(args: argparse.Namespace) -> int:
    import json

    from generator.profiles import check_all

    paths = _profile_paths(args.profiles)
    problems = check_all(paths)
    errors = [p for p in problems if p.severity == "error"]
    if args.json:
        print(json.dumps({"ok": not errors, "problems": [p.as_dict() for p in problems]}, indent=2))
    else:
        for p in problems:
            print(p.render(), file=sys.stderr)
        if not errors:
            print(f"{len(paths)} profile(s) OK", file=sys.stderr)
    return EXIT_INVALID if errors else EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from generator.profiles import profile_schema

    print(json.dumps(profile_schema(), indent=2))
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from generator.doctor.command import run

    return run(args)


def cmd_verify(args: argparse.Namespace) -> int:
    from generator.verify import run

    return run(args, _gsm_settings(args))


def _containerd_release(text: str) -> tuple[int, int]:
    from generator.doctor.containerd_release import parse_option

    try:
        return parse_option(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a containerd release (write e.g. 1.7 or 2.1)") from None


def _add_doctor(sub) -> None:  # type: ignore[no-untyped-def]
    doctor = sub.add_parser("doctor", help="find why a node's registry auth fails", epilog=EPILOG_DOCTOR, formatter_class=argparse.RawDescriptionHelpFormatter)
    doctor.add_argument("paths", nargs="*", metavar="PATH", help="config files, or directories to search (/, /etc, a rootfs/)")
    doctor.add_argument("--image", metavar="REF", help="also check that the host this image is pulled from has credentials")
    doctor.add_argument("--error", metavar="TEXT", help="explain a pasted containerd/crictl/kubelet error ('-' reads it from stdin)")
    doctor.add_argument("--as", dest="as_kind", choices=("containerd", "microk8s", "k3s", "docker", "containers-auth", "kubelet", "kubelet-provider"), help="treat named files as this kind")
    doctor.add_argument("--containerd-version", metavar="X.Y", type=_containerd_release,
                        help="read containerd configs as this containerd release does (1.x and 2.x differ: escapes in [table] header keys, "
                             "relative imports globs, missing imports); default: the plan's, else `containerd --version` when checking /, "
                             "else unknown (read as 2.x, differences reported)")
    doctor.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    doctor.set_defaults(func=cmd_doctor)


def _add_verify(sub) -> None:  # type: ignore[no-untyped-def]
    verify = sub.add_parser("verify", help="check a profile's credentials against its registries", epilog=EPILOG_VERIFY, formatter_class=argparse.RawDescriptionHelpFormatter)
    verify.add_argument("profile", metavar="PROFILE", nargs="?", help="the profile (not with --provider)")
    verify.add_argument("--image", metavar="REF", help="also check this image's manifest can be read (pull permission)")
    verify.add_argument("--provider", metavar="PATH", help="on a node: ask this kubelet credential provider (e.g. /usr/local/sbin/regauth-credential-provider) for --image, then check what it answered")
    verify.add_argument("--provider-root", metavar="DIR", help="pass --root DIR to the provider (regauth's provider; tests and chroots)")
    verify.add_argument("--timeout", type=float, default=10.0, metavar="S", help="per-request timeout in seconds (default 10)")
    verify.add_argument("--ca-file", metavar="PEM", help="also trust this CA (default: the system store, or SSL_CERT_FILE)")
    verify.add_argument("--gsm-timeout", type=float, metavar="S", help="Secret Manager fetch timeout in seconds (build-time secrets)")
    verify.add_argument("--gsm-transport", choices=("grpc", "rest"), help="Secret Manager API transport")
    verify.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    verify.add_argument("-v", "--verbose", action="count", default=0, help="also log what happens (Secret Manager retries are shown anyway)")
    verify.set_defaults(func=cmd_verify)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regauth",
        description="Turn profile YAML into cloud-init user-data and image files that give container runtimes working registry credentials.",
        epilog=EPILOG_MAIN,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"regauth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    render = sub.add_parser("render", help="render profiles into out/NAME/", epilog=EPILOG_RENDER, formatter_class=argparse.RawDescriptionHelpFormatter)
    render.add_argument("profiles", nargs="+", metavar="PROFILE", help="profile files or folders of them")
    render.add_argument("-o", "--output", default=None, metavar="DIR", help="output folder (default: out); '-' writes the user-data of one profile to stdout")
    render.add_argument("--merge-with", action="append", metavar="FILE", help="combine with existing user-data as multipart MIME (their parts first, in order); repeatable")
    render.add_argument("--gsm-timeout", type=float, metavar="S", help="give up Secret Manager fetches after S seconds in total, retries included (default 30)")
    render.add_argument("--gsm-transport", choices=("grpc", "rest"), help="Secret Manager API transport (default grpc; rest helps behind proxies that break HTTP/2)")
    render.add_argument("--dry-run", action="store_true", help="print what would be written (secrets masked); write nothing")
    render.add_argument("-j", "--jobs", type=int, metavar="N", help="worker processes for many profiles (default: number of CPUs; 1 = no workers)")
    render.add_argument("--format", choices=("files", "terraform"), default="files",
                        help="files: DIR/NAME/ (default); terraform: one JSON object on stdout for Terraform's external data source (one profile)")
    render.add_argument("-v", "--verbose", action="count", default=0, help="say what was written, and what Secret Manager retries (-vv: more)")
    render.set_defaults(func=cmd_render, writes=True)

    validate = sub.add_parser("validate", help="check profiles without writing", epilog=EPILOG_VALIDATE, formatter_class=argparse.RawDescriptionHelpFormatter)
    validate.add_argument("profiles", nargs="+", metavar="PROFILE")
    validate.add_argument("--json", action="store_true", help="machine-readable report on stdout")
    validate.add_argument("-v", "--verbose", action="count", default=0)
    validate.set_defaults(func=cmd_validate)

    schema = sub.add_parser("schema", help="print the profile JSON Schema", epilog="example:\n  regauth schema > profile.schema.json", formatter_class=argparse.RawDescriptionHelpFormatter)
    schema.set_defaults(func=cmd_schema)
    _add_doctor(sub)
    _add_verify(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    unknown = _unknown_command(parser, sys.argv[1:] if argv is None else argv)
    if unknown:
        print(f"{parser.prog}: {unknown}", file=sys.stderr)
        return EXIT_INVALID
    args = parser.parse_args(argv)
    _setup_logging(getattr(args, "verbose", 0))
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows up here, inside the handlers below, not at exit
        return code
    except RegauthError as exc:
        print(exc.render(), file=sys.stderr)
        if isinstance(exc, InvalidInput) and getattr(args, "writes", False):
            print(f"regauth: {len(exc.problems)} problem(s); nothing was written", file=sys.stderr)
        elif isinstance(exc, InvalidInput):
            print(f"regauth: {len(exc.problems)} problem(s)", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("regauth: interrupted" + ("; nothing was written" if getattr(args, "writes", False) else ""), file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise  # the reader went away (regauth schema | head -1): the entry point ends quietly
    except Exception as exc:  # an internal bug: no traceback (it could quote data), just where
        if os.environ.get("REGAUTH_DEBUG") == "1":
            raise
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
        print(f"regauth: internal error {type(exc).__name__} at {where}; please report it (REGAUTH_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_RUNTIME


def _unknown_command(parser: argparse.ArgumentParser, argv: list[str]) -> str:
    """'unknown command X (did you mean Y?)' for a misspelled subcommand, else ''.

    argparse would print its usage and a list of every choice; one line with the
    likely intended command is easier to act on.
    """
    word = None
    for a in argv:
        if a in ("-h", "--help", "--version"):
            return ""  # argparse answers these before looking at a command
        if not a.startswith("-"):
            word = a
            break
    if word is None:
        return ""
    commands = list(_commands(parser))
    if word in commands:
        return ""
    from generator.core.suggest import close_match  # only for a mistake: keeps --help light

    hint = close_match(word, commands)
    did_you_mean = f" (did you mean '{hint}'?)" if hint else ""
    return f"unknown command '{word}'{did_you_mean}; commands: {', '.join(commands)} (regauth --help)"


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._subparsers._group_actions if parser._subparsers else []:  # noqa: SLF001 (argparse keeps them here)
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            return list(action.choices)
    return []


def _setup_logging(verbose: int) -> None:
    """Library modules log through ``logging`` (e.g. Secret Manager retries at WARNING);
    they reach stderr as ``regauth: ...`` lines.  ``-v`` adds INFO, ``-vv`` DEBUG."""
    import logging

    logger = logging.getLogger("generator")
    if any(getattr(h, "regauth_cli", False) for h in logger.handlers):
        logger.setLevel(logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.regauth_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("regauth: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG)

if __name__ == "__main__":
    sys.exit(main())
