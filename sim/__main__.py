"""``python -m sim`` is ``pmsim``."""

from sim.commands.cli import main

if __name__ == "__main__":  # not when a spawned engine process imports this module again
    raise SystemExit(main())
