"""``python -m generator.messages [--write README.md]``: print (or write into the README) the
list of problems, generated from the catalogue; tests/unit/test_messages.py keeps them equal."""

from __future__ import annotations

import sys
from pathlib import Path

from generator.messages import readme_table

START, END = "<!-- catalogue:start (python -m generator.messages --write README.md) -->", "<!-- catalogue:end -->"


def with_table(readme: str) -> str:
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{readme_table()}{END}{tail}"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--write"] and len(argv) == 2:
        path = Path(argv[1])
        path.write_text(with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    sys.stdout.write(readme_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
