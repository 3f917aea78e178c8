"""Progress with a time-left estimate for long loops, readable in a terminal and in a captured log.

In a terminal one line is redrawn in place (at most a few times a second). When the stream is not a
terminal (`dvc repro` captures it) carriage returns would pile up into one unreadable line, so a plain
line is printed at every 10% or every `every_seconds`, whichever comes first, and only once the work
has run for a second: short jobs print just their closing summary. Progress goes to stderr, so a
command's own output (e.g. `--json`) stays clean.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """`with Progress(total, "users scored") as p: ... p.advance(n)`; prints done/total, rate and ETA."""

    def __init__(self, total: int, what: str, *, stream=None, every_seconds: float = 30.0, clock=time.monotonic):
        self.total, self.what = int(total), what
        self.stream = stream if stream is not None else sys.stderr
        self.every_seconds, self.clock = every_seconds, clock
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self.start = self.last_print = clock()
        self.next_tenth = 1

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()

    def advance(self, n: int) -> None:
        self.done += int(n)
        now = self.clock()
        elapsed = now - self.start
        if self.tty:
            if now - self.last_print >= 0.2:
                self._print(self._line(elapsed), end="\r")
                self.last_print = now
            return
        tenth = self.done * 10 // max(self.total, 1)
        if elapsed >= 1.0 and (tenth >= self.next_tenth or now - self.last_print >= self.every_seconds) and self.done < self.total:
            self._print(self._line(elapsed))
            self.last_print = now
        self.next_tenth = max(self.next_tenth, tenth + 1)

    def close(self) -> None:
        elapsed = self.clock() - self.start
        rate = f", {self.done / elapsed:,.0f}/s" if elapsed > 0 else ""
        self._print(f"{self.what}: {self.done:,} in {elapsed:.1f} s{rate}" + (" " * 20 if self.tty else ""))

    def _line(self, elapsed: float) -> str:
        share = self.done / max(self.total, 1)
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = f"{(self.total - self.done) / rate:,.0f} s left" if rate > 0 else "estimating"
        return f"{self.what}: {self.done:,}/{self.total:,} ({share:.0%}), {rate:,.0f}/s, {eta}"

    def _print(self, text: str, end: str = "\n") -> None:
        print(text, end=end, file=self.stream, flush=True)
