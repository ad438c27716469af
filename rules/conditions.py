"""The condition primitives and the alert lifecycle they drive.

Momentary conditions (``event``, ``count``, ``repeat``, ``sequence``/followed) trigger at an instant;
their alert stays up ``keep_firing_for`` after the last trigger. Sustained conditions (``threshold``,
``duration``, ``absence``, ``sequence``/missing) hold until the state ends (a clear level, a stop
event, the device speaking again, B arriving), then ``keep_firing_for`` more. Every change is a
record; cooldown, active hours and inhibition can stop a new alert from starting.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from devices.events import DeviceEvent
from rules.alerts import AlertState, KeyState, alert_record, identity
from rules.beattrack import catch_up, park
from rules.enginetypes import EngineView, Key, Record
from rules.ruleset import CompiledRule

__all__ = ["on_event", "on_timer"]

SUSTAINED = {"threshold", "duration", "absence"}


def _sustained(cr: CompiledRule) -> bool:
    cond = cr.rule.condition
    return cond.kind in SUSTAINED or (cond.kind == "sequence" and cond.expect == "missing")


def _labels(cr: CompiledRule, key: Key, estate: str | None) -> dict[str, Any]:
    labels: dict[str, Any] = {}
    if estate is not None and "estate" not in cr.rule.key:
        labels["estate"] = estate
    labels.update(zip(cr.rule.key, key, strict=True))
    return labels


def on_event(
    engine: EngineView, cr: CompiledRule, role: str, key: Key, event: DeviceEvent, out: list[Record]
) -> None:
    cond = cr.rule.condition
    ks = engine.key_state(cr, key)
    if not ks.labels:
        ks.labels = _labels(cr, key, event.estate)
    t = event.sim_seconds
    eid = event.event_id
    if cond.kind == "event":
        _trigger(engine, cr, key, ks, t, [eid], out)
    elif cond.kind == "count":
        ks.times.append((t, eid))
        lo = t - cond.window
        drop = 0
        while ks.times[drop][0] < lo:
            drop += 1
        if drop:
            del ks.times[:drop]
        if len(ks.times) >= cond.n:
            _trigger(engine, cr, key, ks, t, [i for _, i in ks.times], out)
    elif cond.kind == "threshold":
        v = getattr(event, cond.field, None)
        if v is None:
            return
        above = cond.direction == "above"
        raised = v >= cond.raise_level if above else v <= cond.raise_level
        cleared = v < cond.clear_level if above else v > cond.clear_level
        if ks.active and cleared:
            ks.active = False
            _condition_false(engine, cr, key, ks, t, out)
        elif ks.active or raised:
            ks.active = True
            _trigger(engine, cr, key, ks, t, [eid], out)
    elif cond.kind == "duration":
        if role == "watch":
            if ks.since is None:
                ks.since, ks.since_ids = t, [eid]
                engine.schedule(t + cond.at_least, "duration", cr, key)
        elif ks.since is not None:
            ks.since = None
            _condition_false(engine, cr, key, ks, t, out)
    elif cond.kind == "absence":
        ks.since, ks.since_ids = t, [eid]  # the last thing heard: what staff will refer to
        if ks.alert is not None:
            _condition_false(engine, cr, key, ks, t, out)
        if not ks.timer:
            ks.timer = True
            engine.schedule(t + cond.after, "absence", cr, key)
    elif cond.kind == "sequence":
        if role == "watch":
            if cond.expect == "followed":
                ks.since, ks.since_ids = t, [eid]
            elif ks.since is None:
                ks.since, ks.since_ids = t, [eid]
                engine.schedule(t + cond.within, "sequence", cr, key)
        elif ks.since is not None:
            if cond.expect == "missing":
                ks.since = None
                _condition_false(engine, cr, key, ks, t, out)
            elif t - ks.since <= cond.within:
                ids = [*ks.since_ids, eid]
                ks.since = None
                _trigger(engine, cr, key, ks, t, ids, out)


def on_timer(
    engine: EngineView,
    cr: CompiledRule,
    key: Key,
    kind: str,
    deadline: float,
    data: Any,
    out: list[Record],
) -> None:
    ks = engine.key_state(cr, key)
    cond = cr.rule.condition
    a = ks.alert
    if kind == "duration" and cond.kind == "duration":
        if ks.since is not None and ks.since + cond.at_least == deadline:
            _trigger(engine, cr, key, ks, deadline, list(ks.since_ids), out)
    elif kind == "absence" and cond.kind == "absence":
        catch_up(ks, deadline)
        ks.timer = False
        if ks.since is None:
            return
        due = ks.since + cond.after
        if deadline >= due:  # new, or back from keep_firing_for
            _trigger(engine, cr, key, ks, deadline, list(ks.since_ids), out)
        elif not park(ks, cr.index, key):  # a quiet run going on wakes it when it ends
            ks.timer = True
            engine.schedule(due, "absence", cr, key)
    elif kind == "sequence" and cond.kind == "sequence":
        if ks.since is not None and ks.since + cond.within == deadline:
            _trigger(engine, cr, key, ks, deadline, list(ks.since_ids), out)
    elif kind == "retry":
        if a is None and _holds(cr, ks, deadline):
            _trigger(engine, cr, key, ks, deadline, list(ks.since_ids), out)
    elif a is None or a.alert_id != (data[0] if kind == "escalate" else data):
        return  # the alert this timer was for is gone
    elif kind == "for":
        if a.state == "pending":
            _fire(engine, cr, key, a, deadline, out)
    elif kind == "hold":
        if a.last_trigger_s + cr.rule.keep_firing_for <= deadline:
            _resolve(engine, cr, ks, a, deadline, out)
    elif kind == "kff":
        if a.cond_false_s is not None and a.cond_false_s + cr.rule.keep_firing_for <= deadline:
            _resolve(engine, cr, ks, a, deadline, out)
    elif kind == "escalate" and a.active:
        a.severity = cr.rule.escalate[data[1]].severity
        out.append(alert_record(a, "escalated", deadline, engine.s.epoch))


def _in_hours(engine: EngineView, t: float, hours: tuple[float, float]) -> bool:
    if engine.s.epoch is None:
        return True
    at = engine.s.epoch + timedelta(seconds=t)
    h = at.hour + at.minute / 60 + at.second / 3600
    lo, hi = hours
    return lo <= h < hi if lo < hi else (h >= lo or h < hi)


def _next_active(engine: EngineView, t: float, hours: tuple[float, float]) -> float:
    """The next time at or after ``t`` when the active hours begin."""
    assert engine.s.epoch is not None
    at = engine.s.epoch + timedelta(seconds=t)
    start = at.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=hours[0])
    if start <= at:
        start += timedelta(days=1)
    return t + (start - at).total_seconds()


def _holds(cr: CompiledRule, ks: KeyState, t: float) -> bool:
    """Is a sustained condition still true at ``t``?"""
    cond = cr.rule.condition
    if cond.kind == "threshold":
        return ks.active
    if ks.since is None:
        return False
    if cond.kind == "duration":
        return ks.since + cond.at_least <= t
    if cond.kind == "absence":
        catch_up(ks, t)
        return ks.since + cond.after <= t
    if cond.kind == "sequence":
        return ks.since + cond.within <= t
    return False


def _inhibited(engine: EngineView, cr: CompiledRule, labels: dict[str, Any]) -> bool:
    for inh in cr.rule.inhibited_by:
        for b in engine.s.active_by_rule.get(inh.rule, {}).values():
            if b.active and all(b.labels.get(k) == labels.get(k) for k in inh.equal):
                return True
    return False


def _link(index: dict[str, list[tuple[int, Key]]], event_id: str, ref: tuple[int, Key]) -> None:
    refs = index.setdefault(event_id, [])
    if ref not in refs:
        refs.append(ref)


def _trigger(
    engine: EngineView,
    cr: CompiledRule,
    key: Key,
    ks: KeyState,
    t: float,
    ids: list[str],
    out: list[Record],
) -> None:
    s = engine.s
    rule = cr.rule
    sustained = _sustained(cr)
    a = ks.alert
    if a is not None:
        a.hits += 1
        a.last_trigger_s = t
        a.cond_false_s = None
        a.add_ids(ids)
        for i in ids:
            _link(s.alert_of_event, i, (cr.index, key))
        if not sustained:
            engine.schedule(t + rule.keep_firing_for, "hold", cr, key, a.alert_id)
        return
    if ks.last_resolved_s is not None and t < ks.last_resolved_s + rule.cooldown:
        s.stats[f"cooldown:{rule.id}"] += 1
        if sustained:  # a state still true when the cooldown ends alerts then
            engine.schedule(ks.last_resolved_s + rule.cooldown, "retry", cr, key)
        return
    if rule.active_hours is not None and not _in_hours(engine, t, rule.active_hours):
        s.stats[f"off_hours:{rule.id}"] += 1
        if sustained:  # a state still true when the active hours begin alerts then
            engine.schedule(_next_active(engine, t, rule.active_hours), "retry", cr, key)
        return
    if rule.inhibited_by and _inhibited(engine, cr, ks.labels):
        s.stats[f"inhibited:{rule.id}"] += 1
        return
    ks.incarnations += 1
    a = AlertState(
        f"{identity(cr.id, key)}#{ks.incarnations}",
        rule.id,
        ks.labels,
        rule.severity,
        t,
        last_trigger_s=t,
    )
    a.add_ids(ids)
    for i in ids:
        _link(s.alert_of_event, i, (cr.index, key))
    ks.alert = a
    s.active_by_rule.setdefault(rule.id, {})[a.alert_id] = a
    if rule.for_ > 0:
        out.append(alert_record(a, "pending", t, s.epoch))
        engine.schedule(t + rule.for_, "for", cr, key, a.alert_id)
    else:
        _fire(engine, cr, key, a, t, out)
    if not sustained:
        engine.schedule(t + rule.keep_firing_for, "hold", cr, key, a.alert_id)


def _fire(
    engine: EngineView, cr: CompiledRule, key: Key, a: AlertState, t: float, out: list[Record]
) -> None:
    s = engine.s
    rule = cr.rule
    a.state = "firing"
    a.fired_s = t
    wo_rec = None
    if rule.workorder is not None:
        wo, wo_rec = s.workorders.open_for(a, identity(cr.id, key), rule.workorder, t, s.epoch)
        engine.schedule(wo.ack_due_s, "wo_ack", cr, key, wo.workorder_id)
        engine.schedule(wo.close_due_s, "wo_close", cr, key, wo.workorder_id)
    out.append(alert_record(a, "firing", t, s.epoch))
    if wo_rec is not None:
        out.append(wo_rec)
    for i, esc in enumerate(rule.escalate):
        engine.schedule(t + esc.after, "escalate", cr, key, (a.alert_id, i))
    for rc in engine.repeat_listeners.get(rule.id, ()):
        _count_repeat(engine, rc, a, t, out)


def _count_repeat(
    engine: EngineView, rc: CompiledRule, a: AlertState, t: float, out: list[Record]
) -> None:
    cond = rc.rule.condition
    if cond.kind != "repeat":  # pragma: no cover - listeners are repeat rules
        return
    rkey = tuple(a.labels.get(k) for k in rc.rule.key)
    if any(v is None for v in rkey):
        return
    ks = engine.key_state(rc, rkey)
    if not ks.labels:
        ks.labels = _labels(rc, rkey, a.labels.get("estate"))
    ks.times.append((t, a.alert_id))
    lo = t - cond.within
    ks.times = [(tt, i) for tt, i in ks.times if tt >= lo]
    if len(ks.times) >= cond.k:
        _trigger(engine, rc, rkey, ks, t, list(a.event_ids[:1]), out)


def _condition_false(
    engine: EngineView, cr: CompiledRule, key: Key, ks: KeyState, t: float, out: list[Record]
) -> None:
    a = ks.alert
    if a is None or a.cond_false_s is not None:
        return  # no alert, or already on its way out since cond_false_s
    kff = cr.rule.keep_firing_for
    if kff > 0 and a.state != "pending":
        a.cond_false_s = t
        engine.schedule(t + kff, "kff", cr, key, a.alert_id)
    else:
        _resolve(engine, cr, ks, a, t, out)


def _resolve(
    engine: EngineView, cr: CompiledRule, ks: KeyState, a: AlertState, t: float, out: list[Record]
) -> None:
    s = engine.s
    a.state = "resolved"
    out.append(alert_record(a, "resolved", t, s.epoch))
    ks.alert = None
    ks.last_resolved_s = t
    s.active_by_rule.get(cr.id, {}).pop(a.alert_id, None)
    if a.workorder_id is not None and _sustained(cr):
        rec = s.workorders.close(a.workorder_id, t, s.epoch, reason="hazard_gone")
        if rec is not None:
            out.append(rec)
