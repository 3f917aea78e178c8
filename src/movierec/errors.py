"""The one exception type for expected mistakes: the CLI prints its message on one line, without a traceback."""


class MovierecError(Exception):
    """Bad input, bad params or a missing prerequisite, with a message that says how to fix it."""
