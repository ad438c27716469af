"""``python -m sim`` is ``pmsim``."""

from sim.commands.cli import main

raise SystemExit(main())
