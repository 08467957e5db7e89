"""The package's one error class for failures a user can cause.

Every failure that comes from what the user gave (bad data, a bad prior or option, an improper
or uncomputable posterior, a request too large for memory) raises :class:`InputError`. The CLI
shows it as one ``metapool: error:`` line with exit status 2; any other exception is a bug and is
reported as one (see the README). It subclasses :class:`ValueError` so that callers catching
``ValueError`` keep working.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input or an unanswerable request: the message says what, where and what to do."""
