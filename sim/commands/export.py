"""``pmsim export RUN_DIR --format jsonl|parquet|csv [--out DIR] [--what KINDS]``: a run folder's
records (events, truth, alerts, work orders) in another format.

The source is a run folder or an earlier export: each kind is read from ``KIND.jsonl`` or, when
there is none, ``KIND.parquet`` (:func:`sim.files.columnar.iter_records`). The output folder
(default ``RUN_DIR/export-FORMAT``) is written beside its destination and renamed into place
(:func:`sim.files.folders.staged_folder`), so bad input leaves nothing behind; it replaces only a
folder that holds nothing but exported records. Formats: ``jsonl`` (as a run writes it: compact,
UTF-8), ``parquet`` (:mod:`sim.files.columnar`; needs the ``data`` extra) and ``csv`` (one way, for
spreadsheets: the typed columns of :mod:`sim.files.columns` plus ``_extra``, a JSON object of any
other keys; lists and objects as JSON; null as an empty cell; CSV is not read back).
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sim.errors import BadInput
from sim.files.columnar import iter_records, require_pyarrow, write_parquet
from sim.files.columns import COLUMNS, KINDS, find_source, parse_what
from sim.files.folders import staged_folder
from sim.replay import run_traffic

__all__ = ["FORMATS", "add_export_parser", "export", "export_command"]

FORMATS: tuple[str, ...] = ("jsonl", "parquet", "csv")
_SUFFIXES = (".jsonl", ".parquet", ".csv")


def add_export_parser(sub: Any) -> None:
    """The ``export`` subcommand, on the ``pmsim`` parser's subparsers."""
    exp = sub.add_parser("export", help="a run's records as JSON Lines, Parquet or CSV")
    exp.add_argument("run_dir", type=Path, help="a run folder (or an earlier export)")
    exp.add_argument("--format", required=True, choices=FORMATS)
    exp.add_argument("--out", type=Path, help="output folder (default RUN_DIR/export-FORMAT)")
    exp.add_argument(
        "--heartbeats",
        action="store_true",
        help="events with every heartbeat of heartbeats.jsonl built again, in delivery order",
    )
    exp.add_argument(
        "--what",
        default=",".join(KINDS),
        help=f"comma-separated record kinds (default {','.join(KINDS)})",
    )


def export_command(args: argparse.Namespace) -> int:
    """Run ``pmsim export`` from parsed arguments; prints one line per file written."""
    out = args.out or args.run_dir / f"export-{args.format}"
    what = parse_what(args.what)
    for path, count in export(args.run_dir, args.format, out, what, heartbeats=args.heartbeats):
        print(f"wrote {path} ({count} records, {path.stat().st_size} bytes)")
    return 0


def export(
    run_dir: Path,
    fmt: str,
    out: Path,
    what: Iterable[str] = KINDS,
    *,
    heartbeats: bool = False,
) -> list[tuple[Path, int]]:
    """Convert the ``what`` records of ``run_dir`` into ``fmt`` files in ``out`` (replaced whole);
    returns each file written with its number of records. With ``heartbeats``, the events are
    every event the run delivered, each heartbeat of a run built again in its place."""
    if fmt not in FORMATS:
        raise BadInput(f"--format {fmt}: one of {', '.join(FORMATS)}")
    kinds = tuple(what)
    sources = {kind: find_source(run_dir, kind) for kind in kinds}
    if fmt == "parquet" or any(p.suffix == ".parquet" for p in sources.values()):
        require_pyarrow()
    _check_out(run_dir, out)
    written: list[tuple[Path, int]] = []
    with staged_folder(out) as tmp:
        for kind, source in sources.items():
            name = f"{kind}.{fmt}"
            records = (
                _delivered(run_dir, source)
                if heartbeats and kind == "events"
                else iter_records(source)
            )
            if fmt == "parquet":
                count = write_parquet(kind, records, tmp / name)
            elif fmt == "jsonl":
                count = _write_jsonl(records, tmp / name)
            else:
                count = _write_csv(kind, records, tmp / name)
            written.append((out / name, count))
    return written


def _delivered(run_dir: Path, source: Path) -> Iterator[dict[str, Any]]:
    if source.suffix != ".jsonl":
        raise BadInput(f"{run_dir}: --heartbeats needs a run folder (events.jsonl), not an export")
    for line in run_traffic(run_dir):
        yield json.loads(line)


def _check_out(run_dir: Path, out: Path) -> None:
    """Refuse to replace the source, or a folder holding anything but exported records."""
    if out.resolve() == run_dir.resolve():
        raise BadInput(f"--out {out}: is the folder being exported")
    if not out.exists():
        return
    if not out.is_dir():
        raise BadInput(f"--out {out}: exists and is not a folder")
    for entry in sorted(out.iterdir()):
        if not (entry.is_file() and entry.stem in KINDS and entry.suffix in _SUFFIXES):
            raise BadInput(
                f"--out {out}: holds {entry.name}, not an export folder; not replacing it"
            )


def _write_jsonl(records: Iterable[dict[str, Any]], path: Path) -> int:
    n = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")))
            fh.write("\n")
            n += 1
    return n


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))  # numbers, true, [..]


def _write_csv(kind: str, records: Iterable[dict[str, Any]], path: Path) -> int:
    names = [name for name, _ in COLUMNS[kind]]
    known = set(names)
    n = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow([*names, "_extra"])
        for rec in records:
            extra = {k: v for k, v in rec.items() if k not in known}
            writer.writerow([*(_cell(rec.get(name)) for name in names), _cell(extra or None)])
            n += 1
    return n
