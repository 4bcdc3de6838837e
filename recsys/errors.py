"""Errors that carry a message meant for a person.

The CLIs turn a :class:`RecsysError` into one clear line on stderr and exit code 2, with no traceback: bad input
is a user's problem to fix, not a crash to debug.
"""

from __future__ import annotations


class RecsysError(Exception):
    """Base class for errors caused by bad input or configuration (not by a bug)."""


class DataError(RecsysError):
    """A data file is missing, unreadable, or has a missing or badly typed column."""


class SpecError(RecsysError):
    """A dataset spec is invalid: unknown key, missing key, bad value."""
