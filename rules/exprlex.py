"""The tokenizer of rule filter expressions (:mod:`rules.expr`): filter text to tokens.

Rule filters are user text, so they are read by hand, character by character, never by Python's
own tokenizer or ``eval``. Turning text into tokens (numbers, quoted strings, identifiers,
keywords, operators and punctuation, each with its column) is a job of its own, apart from parsing
and type-checking them, so it lives here; :mod:`rules.expr` keeps the parser and the compiler
and :mod:`rules.exprnodes` the closures a compiled filter runs as.
:class:`ExprError` is here too because the tokenizer raises it; import it from :mod:`rules.expr`
as before. It imports nothing outside the standard library.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Literal

__all__ = ["ExprError", "TokKind", "Token", "tokenize"]

#: Longest number literal accepted, in characters, and the largest magnitude: a literal that
#: overflows (``1e99999`` is infinity) could never compare with a real measurement.
MAX_NUMBER_LENGTH = 64
MAX_MAGNITUDE = 1e300

_KEYWORDS: frozenset[str] = frozenset({"and", "or", "not", "in", "true", "false", "null"})
_WHITESPACE = frozenset(" \t\r\n\f\v")
_DIGITS = frozenset("0123456789")
_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_CHARS = _IDENT_START | _DIGITS


class ExprError(ValueError):
    """A bad filter: message plus 0-based column of the offending token."""

    message: str
    column: int

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} (at column {column + 1})")
        self.message = message
        self.column = column

    def __reduce__(self) -> tuple[type[ExprError], tuple[str, int]]:
        return (type(self), (self.message, self.column))


TokKind = Literal["num", "str", "ident", "kw", "op", "punct", "end"]


@dataclasses.dataclass(frozen=True, slots=True)
class Token:
    kind: TokKind
    text: str  # source spelling; for "end" it is empty
    column: int
    value: object = None  # parsed number or unescaped string

    def describe(self) -> str:
        if self.kind == "end":
            return "end of expression"
        if self.kind == "num":
            return f"number {self.text}"
        if self.kind == "str":
            return f"string {self.text}"
        if self.kind == "ident":
            return f"identifier '{self.text}'"
        return f"'{self.text}'"


def tokenize(text: str) -> Iterator[Token]:
    """Tokens one at a time, so the parser reports the leftmost problem first."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in _WHITESPACE:
            i += 1
        elif c in _DIGITS or (c == "-" and i + 1 < n and text[i + 1] in _DIGITS):
            tok, i = _read_number(text, i)
            yield tok
        elif c in "\"'":
            tok, i = _read_string(text, i)
            yield tok
        elif c in _IDENT_START:
            start = i
            while i < n and text[i] in _IDENT_CHARS:
                i += 1
            word = text[start:i]
            yield Token("kw" if word in _KEYWORDS else "ident", word, start)
        elif text.startswith(("==", "!=", "<=", ">="), i):
            yield Token("op", text[i : i + 2], i)
            i += 2
        elif c in "<>":
            yield Token("op", c, i)
            i += 1
        elif c in "()[],":
            yield Token("punct", c, i)
            i += 1
        elif c == "=":
            raise ExprError("unexpected '='; use '==' to compare", i)
        elif c == "!":
            raise ExprError("unexpected '!'; use '!=' or 'not'", i)
        elif c == "-":
            raise ExprError("'-' must be followed directly by a digit (no arithmetic)", i)
        else:
            raise ExprError(f"unexpected character {c!r}", i)
    yield Token("end", "", n)


def _read_number(text: str, start: int) -> tuple[Token, int]:
    n = len(text)
    i = start + 1 if text[start] == "-" else start
    is_float = False

    def digits(j: int, what: str) -> int:
        if j >= n or text[j] not in _DIGITS:
            raise ExprError(f"malformed number: expected a digit {what}", min(j, n - 1))
        while j < n and text[j] in _DIGITS:
            j += 1
        return j

    i = digits(i, "")  # cannot fail: the tokenizer saw a digit here
    if i < n and text[i] == ".":
        is_float = True
        i = digits(i + 1, "after '.'")
    if i < n and text[i] in "eE":
        is_float = True
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        i = digits(j, "in the exponent")
    if i < n and (text[i] in _IDENT_CHARS or text[i] == "."):
        raise ExprError(f"malformed number: unexpected {text[i]!r} after {text[start:i]}", i)
    spelling = text[start:i]
    if i - start > MAX_NUMBER_LENGTH:
        raise ExprError(f"number longer than {MAX_NUMBER_LENGTH} characters", start)
    value: float | int = float(spelling) if is_float else int(spelling)
    if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
        raise ExprError(f"number {spelling} is out of range (beyond ±1e300)", start)
    return Token("num", spelling, start, value), i


def _read_string(text: str, start: int) -> tuple[Token, int]:
    quote = text[start]
    chars: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        c = text[i]
        if c == quote:
            return Token("str", text[start : i + 1], start, "".join(chars)), i + 1
        if c == "\\":
            nxt = text[i + 1] if i + 1 < n else ""
            if nxt not in (quote, "\\"):
                raise ExprError(f"invalid escape in string: only \\{quote} and \\\\ are allowed", i)
            chars.append(nxt)
            i += 2
        else:
            chars.append(c)
            i += 1
    raise ExprError(f"unclosed string: expected a closing {quote}", start)
