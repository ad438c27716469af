"""Output folders that appear whole or not at all.

A run, a sweep or a set of replications is written into a hidden sibling folder and renamed into
place at the end; a failure (or Ctrl-C) removes the partial folder and leaves any earlier output
as it was. An existing folder is replaced only when it holds what pmsim wrote there before
(:func:`check_run_folder`): a stub ``run.json`` among the user's own files is not a run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sim.errors import BadInput

__all__ = ["RUN_RECORD_FIELDS", "check_run_folder", "staged_folder"]

#: What every ``run.json`` pmsim writes holds (sim/runner.py), with the JSON type of each.
RUN_RECORD_FIELDS: dict[str, type | tuple[type, ...]] = {
    "versions": dict,
    "scenario": str,
    "start": str,
    "days": int,
    "seed": int,
    "broker": dict,
    "counts": dict,
    "timings": dict,
}


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


def check_run_folder(out: Path) -> None:
    """Refuse (:class:`BadInput`) an ``--out`` that exists and is not a pmsim run folder: not a
    folder, or not empty and without a ``run.json`` that is a real run record."""
    if not out.exists():
        return
    if not out.is_dir():
        raise BadInput(f"{out}: --out exists and is not a folder")
    if not any(out.iterdir()):
        return
    record = out / "run.json"
    refuse = f"{out}: --out is a non-empty folder that is not a pmsim run; not overwriting"
    try:
        info = json.loads(record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(refuse) from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        raise BadInput(f"{refuse} ({record.name} is not a run record)") from None
    missing = [
        name
        for name, kind in RUN_RECORD_FIELDS.items()
        if not isinstance(info, dict) or not isinstance(info.get(name), kind)
    ]
    if missing:
        raise BadInput(f"{refuse} ({record.name} lacks {', '.join(missing)})")
