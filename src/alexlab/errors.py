"""Errors caused by the user's input: the entry point prints them as one line and exits non-zero."""

import errno
from collections.abc import Iterable
from typing import Any

# A disk that is full, read-only or not this user's: the reason to stop, not a bug to trace.
DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)


class UserError(Exception):
    """Bad input the user can fix; its message is the whole report."""


class ConfigError(UserError):
    """A config value that is not allowed; `key` is relative to its config group."""

    def __init__(self, key: str, value: Any, valid: str) -> None:
        self.key, self.value, self.valid = key, value, valid
        super().__init__(self.describe(key))

    def describe(self, full_key: str) -> str:
        return f"{full_key}={self.value!r} is not valid: {self.valid}"


class DataNotFoundError(UserError):
    """A dataset path that does not hold the files it should."""


def first_line(error: BaseException) -> str:
    """An exception's message as one line of an error report: its first line, or its type."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def check_choice(key: str, value: Any, choices: Iterable[Any]) -> None:
    choices = list(choices)
    if value not in choices:
        raise ConfigError(key, value, "choose one of " + ", ".join(map(str, choices)))


def check_range(
    key: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = False,
    integer: bool = False,
) -> None:
    in_range = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    if in_range:
        above = low <= value if low_inclusive else low < value
        below = value <= high if high_inclusive else value < high
        in_range = above and below
    if not in_range:
        kind = "an integer" if integer else "a number"
        opening, closing = "[" if low_inclusive else "(", "]" if high_inclusive else ")"
        raise ConfigError(key, value, f"expected {kind} in {opening}{low}, {high}{closing}")
