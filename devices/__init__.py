"""pmsim devices: the event schema, the topic scheme and the three device models.

This package imports neither ``rules`` nor ``sim``: it is the contract both sides build on.
"""

from devices.events import SCHEMA_VERSION, DeviceEvent, parse_event, topic_for

__all__ = ["SCHEMA_VERSION", "DeviceEvent", "parse_event", "topic_for"]
