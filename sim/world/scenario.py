"""Scenario files: the district, its estates, companies, devices and behaviour knobs.

Validated by pydantic (unknown keys are errors) and then by :func:`check_scenario` for what a schema
cannot say (references between parts, install days inside the run). ``pmsim schema scenario`` prints
the JSON Schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from devices.base import HealthParams
from devices.blocker import BlockerParams, Lookalike
from devices.camera import CameraParams, Nuisance
from devices.clutter import ClutterParams
from sim.files.yamlio import LoadedYaml, load_yaml, validate_loaded
from sim.world.faultspec import MAX_FAULTS, FaultsFile, FaultSpec

__all__ = [
    "MAX_FLATS",
    "Behaviour",
    "BuildingGroup",
    "Company",
    "DeviceSettings",
    "Estate",
    "GatewaySettings",
    "Grid",
    "Installation",
    "Scenario",
    "building_ids",
    "check_faults",
    "check_scenario",
    "flats",
    "load_scenario",
    "with_faults",
]

# Upper bounds: a file may never ask for more than a machine can hold. Each count, size and
# duration below has one (they are in ``pmsim schema scenario``); the whole city is bounded in
# check_scenario (MAX_FLATS) and a run checks the machine's memory (sim/runner.py).
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Rate = Annotated[float, Field(ge=0.0, le=1000.0)]  # per day, per week, minutes, hours...
Ident = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
MAX_FLATS = 20_000_000  # flats in a whole scenario: a city of 20,000 estates has about 16 million
MAX_SEED = 2**63 - 1
MIN_MEAN_DAYS = 0.01  # a mean time between two outages, when on (0: off): a quarter of an hour
Hour = Annotated[float, Field(ge=0.0, le=24.0)]
InstallKind = Literal["ebike_blocker", "falling_object_camera", "clutter_sensor"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class BuildingGroup(_Strict):
    """``count`` identical buildings; ids run on from the previous group (b01, b02, ...)."""

    count: Annotated[int, Field(gt=0, le=1000)]
    floors: Annotated[int, Field(gt=0, le=60)]
    units: Annotated[int, Field(gt=0, le=50)] = 1
    households_per_floor: Annotated[int, Field(gt=0, le=50)] = 2  # per unit
    elevators_per_unit: Annotated[int, Field(ge=0, le=10)] = 0
    occupancy: Share = 0.92  # share of flats lived in


class Installation(_Strict):
    """Devices of one kind installed on ``day`` in the listed buildings (all when omitted)."""

    kind: InstallKind
    day: Annotated[int, Field(ge=0, le=3660)] = 0
    buildings: list[Annotated[str, Field(max_length=16)]] | None = Field(None, max_length=5000)
    # clutter sensors: watched corridor floors
    floors: list[Annotated[int, Field(gt=0, le=60)]] | None = Field(None, max_length=60)


class Estate(_Strict):
    id: Ident
    name: Name
    company: Ident
    buildings: list[BuildingGroup] = Field(min_length=1, max_length=100)
    devices: list[Installation] = Field(default_factory=list, max_length=100)


class Grid(_Strict):
    id: Ident
    name: Name
    estates: list[Estate] = Field(min_length=1, max_length=20000)


class Company(_Strict):
    """A property company; ``diligence`` is the latent truth rankings should recover."""

    id: Ident
    name: Name
    diligence: Share
    staff: Annotated[int, Field(gt=0, le=100_000)]


class Behaviour(_Strict):
    """Resident behaviour rates (synthetic; calibrated to the facts in DESIGN.md)."""

    ebike_ownership: Share = 0.35
    charger_share: Share = 0.12  # owners inclined to take the e-bike upstairs to charge
    charger_propensity: tuple[Share, Share] = (0.3, 0.8)
    ride_weekday: Share = 0.8
    ride_weekend: Share = 0.55
    covered_share: Share = 0.15  # e-bikes under a rain cover
    # After being blocked most riders park in the bicycle garage (爱博四村); a few carry the battery
    # up in a bag instead, for a while: each evening they might give that up too.
    battery_switch: Share = 0.06
    battery_quit: Share = 0.08
    learn_blocked: Share = 0.55  # propensity cut after being blocked
    learn_staff: Share = 0.6  # after a staff visit
    learn_police: Share = 0.9  # after a joint visit with the community police
    stubborn_share: Share = 0.1
    stubborn_factor: Share = 0.15  # how much of a lesson a stubborn household takes
    insist_share: Share = 0.15  # blocked riders who argue in the car past the door limit
    thrower_share: Share = 0.004
    throws_per_day: Rate = 0.12
    small_object_share: Share = 0.5
    clutter_share: Share = 0.12
    clutter_per_week: Rate = 0.4
    clutter_hours_median: Rate = 18.0
    weekend_clutter_factor: Rate = 1.8
    deliveries_per_household_day: Rate = 0.25
    delivery_minutes_median: Rate = 1.5
    moves_per_1000_household_days: Rate = 0.6
    lookalikes_per_elevator_day: dict[Lookalike, Rate] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]
            "stroller": 1.2,
            "wheelchair": 0.2,
            "bicycle": 0.3,
            "trolley": 0.8,
        }
    )
    nuisances_per_camera_day: dict[Nuisance, Rate] = Field(
        default_factory=lambda: {  # type: ignore[arg-type]
            "bird": 6.0,
            "insect": 4.0,
            "leaves": 3.0,
            "laundry": 1.0,
            "camera_shake": 0.5,
            "rain": 30.0,  # per rainy day
        }
    )
    rainy_day_share: Share = 0.3


class DeviceSettings(_Strict):
    health: HealthParams = HealthParams()
    ebike_blocker: BlockerParams = BlockerParams()
    falling_object_camera: CameraParams = CameraParams()
    clutter_sensor: ClutterParams = ClutterParams()


class GatewaySettings(_Strict):
    """Estate gateways: store-and-forward while disconnected, up to ``buffer_events``."""

    # 0: never (fault injection turns it on); else at least MIN_MEAN_DAYS
    mean_days_between_disconnects: Annotated[float, Field(ge=0.0, le=3660.0)] = 0.0
    mean_disconnect_minutes: Annotated[float, Field(gt=0.0, le=43200.0)] = 20.0
    buffer_events: Annotated[int, Field(ge=0, le=1_000_000)] = 2000


class Staffing(_Strict):
    """How a company's diligence turns into response: slow companies are hours late."""

    fast_response_minutes: Annotated[float, Field(gt=0.0, le=43200.0)] = 20.0
    slow_response_minutes: Annotated[float, Field(gt=0.0, le=43200.0)] = 360.0
    # lognormal sigma of response times
    response_spread: Annotated[float, Field(ge=0.0, le=5.0)] = 0.45
    visit_minutes: Annotated[float, Field(gt=0.0, le=43200.0)] = 25.0
    working_hours: tuple[Hour, Hour] = (8.0, 20.0)
    # console: heartbeats missed
    notice_silent_minutes: Annotated[float, Field(ge=0.0, le=43200.0)] = 45.0
    # Each pair below is (most diligent, least diligent); a company sits between by its diligence.
    thoroughness: tuple[Share, Share] = (0.95, 0.2)  # a visit really fixes the problem
    # Outside working hours an alarm is answered at once by whoever is on duty with this chance,
    # else the next morning: a diligent company keeps a night shift, a lax one rarely.
    night_cover: tuple[Share, Share] = (1.0, 0.0)
    # Falling-object clips are reviewed on the vendor console before anyone goes out: the alarms
    # the platform raises (the console's threshold is the default rule's, confidence 0.8).
    review_min_confidence: Share = 0.8
    review_minutes: tuple[Rate, Rate] = (5.0, 240.0)  # median delay before the clip is seen
    review_miss: tuple[Share, Share] = (0.03, 0.25)  # a real throw dismissed as a false alarm
    review_false_accept: tuple[Share, Share] = (0.002, 0.02)  # a bird or laundry taken for a throw
    review_identify: tuple[Share, Share] = (0.98, 0.75)  # the window found from the clip itself
    # E-bike repeat offenders: the vendor console counts a blocker's detections like the rule does.
    ebike_repeat_count: Annotated[int, Field(gt=0, le=1000)] = 3
    ebike_repeat_days: Rate = 7.0
    # Prevention: a monthly education round cuts habits by this share times diligence, and a daily
    # corridor patrol removes clutter with this chance times diligence.
    education_effect: Share = 0.25
    patrol_share: Share = 0.6
    # Common-area defects (a light out, a fire door propped open) per corridor and month; the
    # patrol puts them right (sim/world/upkeep.py), the office's site inspections find them.
    defects_per_corridor_month: Annotated[float, Field(ge=0.0, le=100.0)] = 1.0


class Scenario(_Strict):
    name: Ident
    title: Annotated[str, Field(max_length=500)] = ""
    start: Annotated[date, Field(ge=date(1970, 1, 1), le=date(2200, 12, 31))]
    days: Annotated[int, Field(gt=0, le=3660)]
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 1
    behaviour: Behaviour = Behaviour()
    devices: DeviceSettings = DeviceSettings()
    gateway: GatewaySettings = GatewaySettings()
    staffing: Staffing = Staffing()
    companies: list[Company] = Field(min_length=1, max_length=20000)
    grids: list[Grid] = Field(min_length=1, max_length=20000)
    # fault injection (sim/world/faultspec.py)
    faults: list[FaultSpec] = Field(default_factory=list, max_length=MAX_FAULTS)

    def estates(self) -> Iterator[tuple[Grid, Estate]]:
        for grid in self.grids:
            for estate in grid.estates:
                yield grid, estate


def building_ids(estate: Estate) -> list[str]:
    """Buildings are numbered b01, b02, ... across the estate's groups, in file order."""
    total = sum(g.count for g in estate.buildings)
    width = max(2, len(str(total)))
    return [f"b{i:0{width}d}" for i in range(1, total + 1)]


def flats(sc: Scenario) -> int:
    """Flats in the whole scenario: buildings x units x floors x households per floor."""
    return sum(
        g.count * g.units * g.floors * g.households_per_floor
        for _, est in sc.estates()
        for g in est.buildings
    )


def check_scenario(loaded: LoadedYaml, sc: Scenario) -> None:
    """What the schema cannot say: unique ids, known references, installs inside the run, a city
    no larger than :data:`MAX_FLATS`."""
    total = flats(sc)
    if total > MAX_FLATS:
        raise loaded.error(
            ("grids",),
            f"{total:,} flats in all (estates x buildings x units x floors x households per "
            f"floor); at most {MAX_FLATS:,}",
        )
    knobs: list[tuple[tuple[str, ...], float]] = [
        (("gateway", "mean_days_between_disconnects"), sc.gateway.mean_days_between_disconnects),
        (
            ("devices", "health", "mean_days_between_outages"),
            sc.devices.health.mean_days_between_outages,
        ),
    ]
    for where, value in knobs:
        if 0 < value < MIN_MEAN_DAYS:
            raise loaded.error(where, f"0 (off) or at least {MIN_MEAN_DAYS} days")
    companies = {c.id for c in sc.companies}
    seen: set[str] = set()
    for i, c in enumerate(sc.companies):
        if c.id in seen:
            raise loaded.error(("companies", i, "id"), f"duplicate company id {c.id!r}")
        seen.add(c.id)
    estate_ids: set[str] = set()
    for gi, grid in enumerate(sc.grids):
        for ei, est in enumerate(grid.estates):
            at = ("grids", gi, "estates", ei)
            if est.id in estate_ids:
                raise loaded.error((*at, "id"), f"duplicate estate id {est.id!r}")
            estate_ids.add(est.id)
            if est.company not in companies:
                raise loaded.error((*at, "company"), f"unknown company {est.company!r}")
            bids = set(building_ids(est))
            max_floors = max(g.floors for g in est.buildings)
            for di, inst in enumerate(est.devices):
                dat = (*at, "devices", di)
                if inst.day >= sc.days:
                    raise loaded.error(
                        (*dat, "day"),
                        f"install day {inst.day} is after the end of the run (days: {sc.days})",
                    )
                for b in inst.buildings or []:
                    if b not in bids:
                        raise loaded.error((*dat, "buildings"), f"unknown building {b!r}")
                if inst.floors is not None and inst.kind != "clutter_sensor":
                    raise loaded.error((*dat, "floors"), "only clutter sensors take floors")
                for f in inst.floors or []:
                    if f > max_floors:
                        raise loaded.error((*dat, "floors"), f"floor {f} above the top floor")
    check_faults(loaded, sc.faults, estate_ids, ("faults",))


def check_faults(
    loaded: LoadedYaml, faults: list[FaultSpec], estates: set[str], at: tuple[str | int, ...]
) -> None:
    """Fault entries name known estates, and day windows run forwards."""
    for i, spec in enumerate(faults):
        for e in spec.estates or []:
            if e not in estates:
                raise loaded.error((*at, i, "estates"), f"unknown estate {e!r}")
        to_day = getattr(spec, "to_day", None)
        if to_day is not None and to_day <= getattr(spec, "from_day", 0.0):
            raise loaded.error((*at, i, "to_day"), "to_day must be after from_day")


def load_scenario(path: str | Path) -> Scenario:
    """Load, validate and check one scenario file (raises :class:`BadInput`)."""
    loaded = load_yaml(path)
    sc = validate_loaded(loaded, Scenario)
    check_scenario(loaded, sc)
    return sc


def with_faults(sc: Scenario, path: str | Path) -> Scenario:
    """The scenario with its ``faults:`` replaced by a faults file's (``pmsim run --faults``)."""
    loaded = load_yaml(path)
    ff = validate_loaded(loaded, FaultsFile)
    check_faults(loaded, ff.faults, {e.id for _, e in sc.estates()}, ("faults",))
    return sc.model_copy(update={"faults": ff.faults})
