"""pmsim sim: the composition root (world, scenarios, transports, runner, command line)."""

__all__: list[str] = []
