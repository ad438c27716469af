"""Bad input: the one exception the CLI turns into a single line and exit code 2."""

from __future__ import annotations

__all__ = ["BadInput"]


class BadInput(Exception):
    """A user-supplied file or argument is wrong. ``str()`` is the one line shown to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
