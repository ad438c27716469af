"""The types shared by the rules engine (:mod:`rules.engine`) and its conditions.

The engine calls the condition primitives (:mod:`rules.conditions`), and they call back into the
engine to read its state, look up a key's state and schedule timers. They meet here instead of
importing each other: :class:`EngineView` is the part of the engine the conditions use, which
:class:`rules.engine.Engine` provides, and :data:`Record` and :data:`Key` are the engine's output
records and rule keys.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from rules.alerts import AlertState, KeyState
from rules.ruleset import CompiledRule
from rules.workorders import WorkOrderBook

__all__ = ["EngineState", "EngineView", "Key", "Record"]

Record = dict[str, Any]
Key = tuple[Any, ...]


class EngineState(Protocol):
    """The engine's running state, as far as the conditions read and change it."""

    @property
    def epoch(self) -> datetime | None: ...

    @property
    def stats(self) -> Counter[str]: ...

    @property
    def active_by_rule(self) -> dict[str, dict[str, AlertState]]: ...

    @property
    def alert_of_event(self) -> dict[str, list[tuple[int, Key]]]: ...

    @property
    def workorders(self) -> WorkOrderBook: ...


class EngineView(Protocol):
    """What the condition primitives need of the engine that calls them."""

    @property
    def s(self) -> EngineState: ...

    @property
    def repeat_listeners(self) -> Mapping[str, Sequence[CompiledRule]]: ...

    def key_state(self, cr: CompiledRule, key: Key) -> KeyState: ...

    def schedule(
        self, deadline: float, kind: str, cr: CompiledRule, key: Key, data: Any = None
    ) -> None: ...
