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

A JSON Lines or Parquet export keeps what replaying it needs (``pmsim replay EXPORT_DIR``): the
run's ``run.json`` is copied as it is (the scenario's start dates the heartbeat runs, its days end
the replay), and the events' delivery times go along: ``events.delivered`` of a run becomes the
``delivered_s`` column of ``events.parquet``, which becomes ``events.delivered`` again in a JSON
Lines export.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sim.errors import BadInput
from sim.files.columnar import iter_records, read_delivered, require_pyarrow, write_parquet
from sim.files.columns import COLUMNS, KINDS, find_source, parse_what
from sim.files.eventlog import DELIVERED
from sim.files.folders import staged_folder
from sim.replay import run_traffic

__all__ = ["FORMATS", "add_export_parser", "export", "export_command"]

FORMATS: tuple[str, ...] = ("jsonl", "parquet", "csv")
_SUFFIXES = (".jsonl", ".parquet", ".csv")
_BESIDE = ("run.json", DELIVERED)  # what an export holds besides records


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
    returns each file of records written with its number of records (``run.json`` and the
    delivery times go along unlisted). With ``heartbeats``, the events are every event the run
    delivered, each heartbeat of a run built again in its place (delivery times unknown)."""
    if fmt not in FORMATS:
        raise BadInput(f"--format {fmt}: one of {', '.join(FORMATS)}")
    kinds = tuple(what)
    sources = {kind: find_source(run_dir, kind) for kind in kinds}
    if fmt == "parquet" or any(p.suffix == ".parquet" for p in sources.values()):
        require_pyarrow()
    _check_out(run_dir, out)
    written: list[tuple[Path, int]] = []
    with staged_folder(out) as tmp:
        if fmt != "csv" and (run_dir / "run.json").is_file():  # CSV is not read back
            shutil.copyfile(run_dir / "run.json", tmp / "run.json")
        for kind, source in sources.items():
            name = f"{kind}.{fmt}"
            every = heartbeats and kind == "events"
            records = _delivered(run_dir) if every else iter_records(source)
            times = _times(source) if kind == "events" and not every else None
            if fmt == "parquet":
                count = write_parquet(kind, records, tmp / name, times)
            elif fmt == "jsonl":
                count = _write_jsonl(records, tmp / name)
                if times is not None:
                    _write_times(times, count, tmp / DELIVERED)
            else:
                count = _write_csv(kind, records, tmp / name)
            written.append((out / name, count))
    return written


def _delivered(run_dir: Path) -> Iterator[dict[str, Any]]:
    for line in run_traffic(run_dir):
        yield json.loads(line)


def _times(events: Path) -> Iterator[float] | None:
    """When each event of ``events`` was delivered: a run's ``events.delivered`` (also in a JSON
    Lines export) or an export's ``delivered_s`` column; None if unknown."""
    if events.suffix == ".parquet":
        return read_delivered(events)
    path = events.parent / DELIVERED
    return _read_times(path) if path.is_file() else None


def _read_times(path: Path) -> Iterator[float]:
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield float(line)
                except ValueError:
                    raise BadInput(f"{path}:{n}: not a number") from None


def _write_times(times: Iterator[float], count: int, path: Path) -> None:
    """``events.delivered`` as a run writes it; as many times as ``count`` events, or bad input."""
    n = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for at in times:
            fh.write(f"{float(at)!r}\n")
            n += 1
    if n != count:
        raise BadInput(f"{path.name}: {n} delivery times for {count} events")


def _check_out(run_dir: Path, out: Path) -> None:
    """Refuse to replace the source, or a folder holding anything but exported records."""
    if out.resolve() == run_dir.resolve():
        raise BadInput(f"--out {out}: is the folder being exported")
    if not out.exists():
        return
    if not out.is_dir():
        raise BadInput(f"--out {out}: exists and is not a folder")
    for entry in sorted(out.iterdir()):
        exported = (entry.stem in KINDS and entry.suffix in _SUFFIXES) or entry.name in _BESIDE
        if not (entry.is_file() and exported):
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
