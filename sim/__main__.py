"""``python -m sim`` is ``pmsim``."""

from sim.cli import main

raise SystemExit(main())
