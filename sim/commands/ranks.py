"""``pmsim rank RUN_DIR`` (print the red and black lists) and ``pmsim report RUN_DIR`` (write
report.html, after ranking the run again with ``--rank-config FILE`` when given).

Every bad input here (a missing or damaged run folder, a ``rankings.json`` not in pmsim's shape, a
period the run has none of, a bad configuration) is a :class:`BadInput`: one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sim.errors import BadInput

__all__ = ["RANK_CONFIG_HELP", "add_rank_parsers", "rank_command", "report_command"]

RANK_CONFIG_HELP = "ranking indicator configuration (default seeds/rankings/default.yaml)"


def add_rank_parsers(sub: Any) -> None:
    """The ``report`` and ``rank`` subcommands, on the ``pmsim`` parser's subparsers."""
    rep = sub.add_parser("report", help="write report.html into a run folder")
    rep.add_argument("run_dir", type=Path)
    rep.add_argument(
        "--rank-config",
        type=Path,
        help=RANK_CONFIG_HELP + "; ranks the run again and rewrites its rankings.json first",
    )

    rk = sub.add_parser("rank", help="print a run's red and black lists")
    rk.add_argument("run_dir", type=Path)
    rk.add_argument(
        "--period",
        choices=["run", "month", "quarter", "half"],
        default="run",
        help="the whole run (default) or its calendar months, quarters or half-years",
    )
    rk.add_argument(
        "--config",
        type=Path,
        help="indicator configuration: rank the run again with it (default: its rankings.json)",
    )


def _folder(run_dir: Path) -> Path:
    if not run_dir.is_dir():
        raise BadInput(f"{run_dir}: not a folder")
    return run_dir


def rank_command(args: argparse.Namespace) -> int:
    from sim.report.ranking import DEFAULT_RANKINGS, compute_rankings, format_rank

    path = _folder(args.run_dir) / "rankings.json"
    if args.config is None and path.exists():
        try:
            rankings = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"{path}: cannot read ({exc})") from None
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        if not isinstance(rankings, dict):
            raise BadInput(f"{path}: not the shape pmsim writes (not a JSON object)")
        print(format_rank(rankings, args.period, path))
        return 0
    config = args.config or DEFAULT_RANKINGS
    print(format_rank(compute_rankings(args.run_dir, config, period=args.period), args.period))
    return 0


def report_command(args: argparse.Namespace) -> int:
    from sim.report.page import write_report

    if args.rank_config is not None:
        from sim.report.ranking import check_rank_file, compute_rankings, write_rankings

        check_rank_file(args.rank_config)  # a bad file is named before the folder is read
        rankings = compute_rankings(_folder(args.run_dir), args.rank_config)
        path = write_rankings(args.run_dir, rankings)
        print(f"wrote {path} (ranked with {args.rank_config})")
    print(f"wrote {write_report(args.run_dir)}")
    return 0
