"""Readings a process keeps for a few seconds: values every request needs, read from the
database at most once per ``max_age`` (``Readings.get``) and dropped at once when this process
changes them (``Readings.clear``, from a signal receiver or the writing method)."""

import time


class Readings:
    """{key: (when read, value)}, at most ``limit`` of them; ``None`` is never kept, so keys
    a visitor makes up (an unknown slug) do not pile up."""

    def __init__(self, limit: int = 256):
        self.limit = limit
        self.seen: dict = {}

    def get(self, key, max_age: float, read):
        """The value read at most ``max_age`` seconds ago, else ``read()`` (kept unless None)."""
        now = time.monotonic()
        seen = self.seen.get(key)
        if max_age > 0 and seen is not None and now - seen[0] <= max_age:
            return seen[1]
        value = read()
        if value is not None:
            if len(self.seen) >= self.limit:
                self.seen.clear()
            self.seen[key] = (now, value)
        return value

    def clear(self) -> None:
        self.seen.clear()
