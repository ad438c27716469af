"""The one event schema every pmsim device speaks, and the topic each event goes to.

Events are frozen pydantic v2 models discriminated on ``type``. Whatever carries them (a list in a
test, ``events.jsonl``, MQTT) carries the JSON of these models, so a consumer validates a payload with
:func:`parse_event` and gets the same object the device built. Truth never travels in an event.

Topics: ``{prefix}/dev/{estate}/{building}/{device_kind}/{device_id}`` carries one event (QoS 1);
``{prefix}/gw/{estate}/status`` the gateway's status (retained, its last will). A gateway that
batches (``pmsim run --batch N``) sends device events instead as one JSON array of these same
event objects on ``{prefix}/batch/{estate}`` (:func:`batch_topic`): a topic of its own, so that a
subscriber to ``dev/#`` only ever sees single events, and any MQTT client can read either.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "DEVICE_KINDS",
    "EVENT_TYPES",
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
    "Event",
    "EventBase",
    "FallingObject",
    "GatewayStatus",
    "Heartbeat",
    "StaffArrived",
    "StaffDone",
    "batch_topic",
    "event_adapter",
    "event_id",
    "parse_event",
    "topic_for",
]

SCHEMA_VERSION = 1

DeviceKind = Literal[
    "ebike_blocker", "falling_object_camera", "clutter_sensor", "gateway", "staff_app"
]
DEVICE_KINDS: tuple[str, ...] = ("ebike_blocker", "falling_object_camera", "clutter_sensor")

Confidence = Annotated[float, Field(ge=0.0, le=1.0)]
Seconds = Annotated[float, Field(ge=0.0)]


def event_id(device_id: str, seq: int) -> str:
    """Deterministic event id: the device and its own sequence number."""
    return f"{device_id}:{seq}"


class EventBase(BaseModel):
    """Envelope shared by every event."""

    # No NaN or Infinity (JSON has neither; Python's json reads them): an infinite time or
    # duration is no measurement, and would poison the engine's clock.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    schema_version: Literal[1] = 1
    event_id: str = Field(min_length=1, max_length=200)
    device_id: str = Field(min_length=1, max_length=160)
    device_kind: DeviceKind
    estate: str = Field(min_length=1, max_length=64)
    building: str = Field(min_length=1, max_length=64)
    floor: int | None = None
    time: AwareDatetime
    sim_seconds: Seconds
    seq: int = Field(ge=0)


# -- e-bike blocker -------------------------------------------------------------------------------


class EbikeDetected(EventBase):
    """The elevator camera saw what it takes for an e-bike; the voice warning plays."""

    type: Literal["ebike_detected"] = "ebike_detected"
    confidence: Confidence
    object_class: Literal["ebike", "ebike_covered"]


class DoorHeld(EventBase):
    """The blocker holds the door open and disables the floor buttons."""

    type: Literal["door_held"] = "door_held"


class DoorReleased(EventBase):
    """The object left; the door works again (about 7 s after its last frame)."""

    type: Literal["door_released"] = "door_released"
    held_seconds: Seconds


class DoorOpenTooLong(EventBase):
    """The door has been held past the blocker's limit (about 120 s)."""

    type: Literal["door_open_too_long"] = "door_open_too_long"
    held_seconds: Seconds


# -- falling-object camera ------------------------------------------------------------------------


class FallingObject(EventBase):
    """A track spanning more than two floors; origin estimated with error."""

    type: Literal["falling_object"] = "falling_object"
    estimated_floor: int = Field(ge=1)
    estimated_column: int = Field(ge=1)
    confidence: Confidence
    floors_spanned: int = Field(ge=0)
    clip_id: str


# -- hallway clutter sensor -----------------------------------------------------------------------


class ClutterDetected(EventBase):
    """An object has occupied the corridor past the minimum dwell and area share."""

    type: Literal["clutter_detected"] = "clutter_detected"
    area_share: Annotated[float, Field(ge=0.0, le=1.0)]
    dwell_seconds: Seconds


class ClutterCleared(EventBase):
    """The corridor is clear again."""

    type: Literal["clutter_cleared"] = "clutter_cleared"
    present_seconds: Seconds


# -- every device ---------------------------------------------------------------------------------


class Heartbeat(EventBase):
    """Periodic liveness signal; its absence is how a dead device shows."""

    type: Literal["heartbeat"] = "heartbeat"


class DeviceFault(EventBase):
    """The device reports it cannot work (lens blocked, IR failure, storage error...)."""

    type: Literal["fault"] = "fault"
    code: str = Field(min_length=1, max_length=64)


class GatewayStatus(EventBase):
    """An estate gateway came online or went offline (the offline one is its MQTT last will)."""

    type: Literal["gateway_status"] = "gateway_status"
    status: Literal["online", "offline"]


# -- property staff app ---------------------------------------------------------------------------


class StaffArrived(EventBase):
    """A staff member checks in on the property app at the scene of an alarm (acknowledges it)."""

    type: Literal["staff_arrived"] = "staff_arrived"
    ref_event_id: str = Field(min_length=1, max_length=200)
    action: str = Field(min_length=1, max_length=64)


class StaffDone(EventBase):
    """The staff member reports the job finished (which is not proof the hazard is gone)."""

    type: Literal["staff_done"] = "staff_done"
    ref_event_id: str = Field(min_length=1, max_length=200)
    action: str = Field(min_length=1, max_length=64)
    outcome: Literal["done", "not_found"]


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
)
Event = Annotated[DeviceEvent, Field(discriminator="type")]

EVENT_TYPES: tuple[str, ...] = (
    "ebike_detected",
    "door_held",
    "door_released",
    "door_open_too_long",
    "falling_object",
    "clutter_detected",
    "clutter_cleared",
    "heartbeat",
    "fault",
    "gateway_status",
    "staff_arrived",
    "staff_done",
)

event_adapter: TypeAdapter[DeviceEvent] = TypeAdapter(Event)


def parse_event(payload: bytes | str) -> DeviceEvent:
    """Validate one JSON payload into its event model (raises ``pydantic.ValidationError``)."""
    return event_adapter.validate_json(payload)


def topic_for(event: DeviceEvent, prefix: str = "pm") -> str:
    """The MQTT topic of an event: device events by device, gateway status by estate."""
    if isinstance(event, GatewayStatus):
        return f"{prefix}/gw/{event.estate}/status"
    return f"{prefix}/dev/{event.estate}/{event.building}/{event.device_kind}/{event.device_id}"


def batch_topic(estate: str, prefix: str = "pm") -> str:
    """The MQTT topic of a gateway's batch of device events: a JSON array, in publish order."""
    return f"{prefix}/batch/{estate}"
