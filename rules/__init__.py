"""pmsim rules: the pure rules engine (no simpy, no paho, no sim). Built in the rules-engine issue."""

__all__: list[str] = []
