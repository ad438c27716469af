"""The one event schema every pmsim device speaks, and the topic each event goes to.

Events are frozen msgspec Structs, a union tagged on ``type``: building, encoding and validating one
costs well under a microsecond each, which matters on the hot path of every run. Whatever carries them
(a list in a test, ``events.jsonl``, MQTT) carries the JSON of these structs (:func:`event_json`), so a
consumer validates a payload with :func:`parse_event` and gets the same object the device built.
Constructing a struct in Python does not validate it; decoding (:func:`parse_event`,
:func:`event_from_python`) always does, strictly: no coercion, no unknown field, no NaN or infinity.
This module is the one source of the schema; ``pmsim schema event`` prints its JSON Schema.
Truth never travels in an event.

Topics: ``{prefix}/dev/{estate}/{building}/{device_kind}/{device_id}`` carries one event (QoS 1);
``{prefix}/gw/{estate}/status`` the gateway's status (retained, its last will). A gateway that
batches (``pmsim run --batch N``) sends device events instead as one JSON array of these same
event objects on ``{prefix}/batch/{estate}`` (:func:`batch_topic`): a topic of its own, so that a
subscriber to ``dev/#`` only ever sees single events, and any MQTT client can read either.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "DEVICE_KINDS",
    "EVENT_MODELS",
    "EVENT_TYPES",
    "MAX_SECONDS",
    "SCHEMA_VERSION",
    "ClutterCleared",
    "ClutterDetected",
    "DeviceEvent",
    "DeviceFault",
    "DeviceKind",
    "DoorHeld",
    "DoorOpenTooLong",
    "DoorReleased",
    "EbikeDetected",
    "EventBase",
    "EventError",
    "FallingObject",
    "GatewayStatus",
    "Heartbeat",
    "StaffArrived",
    "StaffDone",
    "StaffReview",
    "batch_topic",
    "event_bytes",
    "event_from_python",
    "event_id",
    "event_json",
    "event_schema",
    "explain",
    "parse_event",
    "parse_events",
    "replace_event",
    "states_version",
    "topic_for",
    "unknown_type",
]

SCHEMA_VERSION = 1

DeviceKind = Literal[
    "ebike_blocker", "falling_object_camera", "clutter_sensor", "gateway", "staff_app"
]
DEVICE_KINDS: tuple[str, ...] = ("ebike_blocker", "falling_object_camera", "clutter_sensor")

# JSON has no NaN or Infinity, but a huge exponent (1e400) decodes to infinity, and 1e308 is a
# number: neither is a time or a duration, and either would poison the engine's clock. Times and
# durations stop at a century, dates at 2000..2100, floors at 200.
MAX_SECONDS = 100 * 366 * 86400.0
YEARS = (2000, 2100)
MAX_FLOOR = 200
Confidence = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_SECONDS)]
Share = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
AwareTime = Annotated[
    datetime,
    msgspec.Meta(
        tz=True,
        description=f"an aware date-time in the years {YEARS[0]} to {YEARS[1]}",
        extra_json_schema={
            "formatMinimum": f"{YEARS[0]}-01-01T00:00:00Z",
            "formatMaximum": f"{YEARS[1]}-12-31T23:59:59Z",
        },
    ),
]
Positive = Annotated[int, msgspec.Meta(ge=1)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Floor = Annotated[int, msgspec.Meta(ge=-10, le=MAX_FLOOR)]
FloorNumber = Annotated[int, msgspec.Meta(ge=1, le=MAX_FLOOR)]
Column = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Span = Annotated[int, msgspec.Meta(ge=0, le=MAX_FLOOR)]

EventError = msgspec.ValidationError | msgspec.DecodeError  # what decoding a bad event raises


def event_id(device_id: str, seq: int) -> str:
    """Deterministic event id: the device and its own sequence number."""
    return f"{device_id}:{seq}"


class EventBase(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="type"
):
    """Envelope shared by every event; ``type`` (the tag) comes first in its JSON."""

    schema_version: Literal[1] = 1
    event_id: EventId
    device_id: Annotated[str, msgspec.Meta(min_length=1, max_length=160)]
    device_kind: DeviceKind
    estate: Name
    building: Name
    floor: Floor | None = None
    time: AwareTime
    sim_seconds: Seconds
    seq: Count

    def __post_init__(self) -> None:
        # msgspec runs this after decoding too: a ValueError here is a ValidationError there
        if not YEARS[0] <= self.time.year <= YEARS[1]:
            raise ValueError(f"time {self.time.isoformat()} is not in {YEARS[0]}..{YEARS[1]}")

    @property
    def type(self) -> str:
        """The event type (the union's tag)."""
        return str(self.__struct_config__.tag)


# -- e-bike blocker -------------------------------------------------------------------------------


class EbikeDetected(EventBase, frozen=True, tag="ebike_detected"):
    """The elevator camera saw what it takes for an e-bike; the voice warning plays."""

    confidence: Confidence
    object_class: Literal["ebike", "ebike_covered"]


class DoorHeld(EventBase, frozen=True, tag="door_held"):
    """The blocker holds the door open and disables the floor buttons."""


class DoorReleased(EventBase, frozen=True, tag="door_released"):
    """The object left; the door works again (about 7 s after its last frame)."""

    held_seconds: Seconds


class DoorOpenTooLong(EventBase, frozen=True, tag="door_open_too_long"):
    """The door has been held past the blocker's limit (about 120 s)."""

    held_seconds: Seconds


# -- falling-object camera ------------------------------------------------------------------------


class FallingObject(EventBase, frozen=True, tag="falling_object"):
    """A track spanning more than two floors; origin estimated with error."""

    estimated_floor: FloorNumber
    estimated_column: Column
    confidence: Confidence
    floors_spanned: Span
    clip_id: str


# -- hallway clutter sensor -----------------------------------------------------------------------


class ClutterDetected(EventBase, frozen=True, tag="clutter_detected"):
    """An object has occupied the corridor past the minimum dwell and area share."""

    area_share: Share
    dwell_seconds: Seconds


class ClutterCleared(EventBase, frozen=True, tag="clutter_cleared"):
    """The corridor is clear again."""

    present_seconds: Seconds


# -- every device ---------------------------------------------------------------------------------


class Heartbeat(EventBase, frozen=True, tag="heartbeat"):
    """Periodic liveness signal; its absence is how a dead device shows."""


class DeviceFault(EventBase, frozen=True, tag="fault"):
    """The device reports it cannot work (lens blocked, IR failure, storage error...)."""

    code: Name


class GatewayStatus(EventBase, frozen=True, tag="gateway_status"):
    """An estate gateway came online or went offline (the offline one is its MQTT last will)."""

    status: Literal["online", "offline"]


# -- property staff app ---------------------------------------------------------------------------


class StaffArrived(EventBase, frozen=True, tag="staff_arrived"):
    """A staff member checks in on the property app at the scene of an alarm (acknowledges it)."""

    ref_event_id: EventId
    action: Name


class StaffDone(EventBase, frozen=True, tag="staff_done"):
    """The staff member reports the job finished (which is not proof the hazard is gone)."""

    ref_event_id: EventId
    action: Name
    outcome: Literal["done", "not_found"]


class StaffReview(EventBase, frozen=True, tag="staff_review"):
    """A staff member reviewed an alarm's clip on the vendor console before anyone goes out:
    a real hazard (``confirmed``) or not (``false_alarm``)."""

    ref_event_id: EventId
    action: Name
    verdict: Literal["confirmed", "false_alarm"]


DeviceEvent = (
    EbikeDetected
    | DoorHeld
    | DoorReleased
    | DoorOpenTooLong
    | FallingObject
    | ClutterDetected
    | ClutterCleared
    | Heartbeat
    | DeviceFault
    | GatewayStatus
    | StaffArrived
    | StaffDone
    | StaffReview
)

EVENT_MODELS: dict[str, type[EventBase]] = {
    str(cls.__struct_config__.tag): cls
    for cls in (
        EbikeDetected,
        DoorHeld,
        DoorReleased,
        DoorOpenTooLong,
        FallingObject,
        ClutterDetected,
        ClutterCleared,
        Heartbeat,
        DeviceFault,
        GatewayStatus,
        StaffArrived,
        StaffDone,
        StaffReview,
    )
}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_MODELS)

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DeviceEvent)
_batch_decoder = msgspec.json.Decoder(list[DeviceEvent])


class _Version(msgspec.Struct):
    schema_version: Any = msgspec.UNSET


_version_decoder = msgspec.json.Decoder(_Version)
_versions_decoder = msgspec.json.Decoder(list[_Version])


def event_bytes(event: EventBase) -> bytes:
    """The event's JSON, as it goes on the wire and into ``events.jsonl``."""
    return _encoder.encode(event)


def event_json(event: EventBase) -> str:
    """The event's JSON as text."""
    return _encoder.encode(event).decode("utf-8")


def parse_event(payload: bytes | str) -> DeviceEvent:
    """Validate one JSON payload into its event (raises ``msgspec.ValidationError`` or
    ``msgspec.DecodeError``, both ``ValueError``)."""
    return _decoder.decode(payload)


def parse_events(payload: bytes | str) -> list[DeviceEvent]:
    """Validate a JSON array of events (a gateway's batch) in one pass."""
    return _batch_decoder.decode(payload)


def states_version(payload: bytes | str, *, batch: bool = False) -> bool:
    """Whether a JSON event (or each event of a ``batch`` array) says its ``schema_version``,
    which the struct's default would otherwise fill in."""
    try:
        if batch:
            return all(
                v.schema_version is not msgspec.UNSET for v in _versions_decoder.decode(payload)
            )
        return _version_decoder.decode(payload).schema_version is not msgspec.UNSET
    except (msgspec.ValidationError, msgspec.DecodeError):
        return False


def event_from_python(doc: Any) -> DeviceEvent:
    """Validate a parsed document (a dict from YAML or JSON) into its event, as strictly as a
    payload (a time may be an ISO 8601 string or an aware datetime)."""
    event: DeviceEvent = msgspec.convert(doc, DeviceEvent)
    return event


def explain(exc: Exception) -> tuple[str, str]:
    """A decoding error as ``(where, what)``: the field's dotted path ("" for the whole event,
    "type" for an unknown type) and the message without the path."""
    text = str(exc)
    message, sep, where = text.rpartition(" - at `$")
    if not sep:
        return "", text
    return where.rstrip("`").lstrip(".").replace("[", ".").replace("]", ""), message


def unknown_type(exc: Exception) -> bool:
    """Whether decoding failed only because the ``type`` names no event."""
    where, message = explain(exc)
    return where == "type" and message.startswith("Invalid value")


def replace_event(event: DeviceEvent, **changes: Any) -> DeviceEvent:
    """A copy of ``event`` with some fields changed (not validated)."""
    changed: DeviceEvent = msgspec.structs.replace(event, **changes)
    return changed


def event_schema() -> dict[str, Any]:
    """The JSON Schema of one event (any type)."""
    return msgspec.json.schema(DeviceEvent)


def topic_for(event: EventBase, prefix: str = "pm") -> str:
    """The MQTT topic of an event: device events by device, gateway status by estate."""
    if isinstance(event, GatewayStatus):
        return f"{prefix}/gw/{event.estate}/status"
    return f"{prefix}/dev/{event.estate}/{event.building}/{event.device_kind}/{event.device_id}"


def batch_topic(estate: str, prefix: str = "pm") -> str:
    """The MQTT topic of a gateway's batch of device events: a JSON array, in publish order."""
    return f"{prefix}/batch/{estate}"
