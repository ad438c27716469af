"""Output folders that appear whole or not at all.

A run, a sweep or a set of replications is written into a hidden sibling folder and renamed into
place at the end; a failure (or Ctrl-C) removes the partial folder and leaves any earlier output
as it was.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["staged_folder"]


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """Yield a fresh staging folder; on success it replaces ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
