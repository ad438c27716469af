"""The simulated world: estates, buildings, households, property companies, nuisances, gateways,
the scenario files that describe them, the calendar, the keyed random streams, the truth ledger and
fault injection. Nothing here knows about MQTT, reports or commands: events leave through the
:class:`~sim.world.transport.Transport` handed in."""
