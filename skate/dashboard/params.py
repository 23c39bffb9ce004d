"""Query parameters, checked: a bad value is a 400 that names it and says what is allowed.

>>> page_of({"page": "2", "per_page": "10"})
Page(number=2, size=10)
>>> page_of({"page": "zero"})
Traceback (most recent call last):
...
skate.dashboard.errors.ApiError: page must be a whole number >= 1, got 'zero'.
>>> Page(3, 10).slice(list(range(100)))
[20, 21, 22, 23, 24, 25, 26, 27, 28, 29]
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

from skate.dashboard.errors import bad_request

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
MAX_TEXT = 200  # longest name filter accepted


class Page(NamedTuple):
    number: int  #: 1-based
    size: int

    @property
    def offset(self) -> int:
        """How many records come before this page."""
        return (self.number - 1) * self.size

    @property
    def end(self) -> int:
        """How many records, from the first, this page needs."""
        return self.number * self.size

    def slice(self, records: list) -> list:
        return records[self.offset:self.end]

    def info(self, total: int) -> dict:
        """The pagination fields of a listing's answer."""
        return {"total": total, "page": self.number, "per_page": self.size,
                "pages": max(1, -(-total // self.size))}


def whole(query: Mapping, name: str, default: int, low: int, high: int | None = None) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bound = f"{low}-{high}" if high is not None else f">= {low}"
        kind = "a whole number " + (f"from {bound}" if high is not None else bound)
        raise bad_request(f"{name} must be {kind}, got {raw!r}.")
    return value


def page_of(query: Mapping) -> Page:
    return Page(whole(query, "page", 1, 1),
                whole(query, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE))


def choice(query: Mapping, name: str, allowed) -> str | None:
    """``query[name]`` if it is one of ``allowed`` (None when absent or empty)."""
    raw = query.get(name) or None
    if raw is not None and raw not in allowed:
        raise bad_request(f"{name} must be one of {', '.join(allowed)}; got {raw!r}.")
    return raw


def text(query: Mapping, name: str) -> str | None:
    raw = query.get(name) or None
    if raw is not None and len(raw) > MAX_TEXT:
        raise bad_request(f"{name} is longer than {MAX_TEXT} characters.")
    return raw
