"""Did-you-mean: the one rule every layer uses to suggest the word a user meant."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def close_match(word: str, choices: Iterable[str], aliases: Mapping[str, str] | None = None, cutoff: float = 0.6) -> str | None:
    """The choice ``word`` was most likely meant to be, for did-you-mean hints.

    ``aliases`` maps known misspellings (names from other tools or versions) to the
    right choice; they win over spelling similarity when the target is a choice here.
    """
    choices = list(choices)
    if aliases and aliases.get(word) in choices:
        return aliases[word]
    import difflib  # imported only when there is a mistake to explain: off the cold start

    found = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    return found[0] if found else None
