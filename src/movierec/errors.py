"""Expected mistakes: the one exception type (the CLI prints its message on one line, without a
traceback), and the hint its messages give for a mistyped name."""

import difflib


class MovierecError(Exception):
    """Bad input, bad params or a missing prerequisite, with a message that says how to fix it."""


def did_you_mean(key: str, options) -> str:
    """The hint " (did you mean 'x'?)" naming the option closest to a mistyped `key`; "" if none is close."""
    close = difflib.get_close_matches(key, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
