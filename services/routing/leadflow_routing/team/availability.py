"""Is a rep able to take a lead right now? Pure functions of plain data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Absence:
    """A planned out-of-office period: ``start`` inclusive, ``end`` exclusive."""

    start: datetime
    end: datetime
    reason: str | None = None


def absences(stored: list[dict[str, Any]] | None) -> tuple[Absence, ...]:
    """``reps.out_of_office_periods`` ([{from, to, reason}], ISO 8601) as plain values."""
    return tuple(
        Absence(datetime.fromisoformat(p["from"]), datetime.fromisoformat(p["to"]), p.get("reason"))
        for p in stored or ()
    )


@dataclass(frozen=True)
class RepView:
    """The parts of a rep that routing decisions look at."""

    id: str
    role: str
    team: str | None = None
    territories: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    capacity_per_day: int | None = None
    weight: float = 1.0
    working_hours: dict[str, Any] | None = None
    out_of_office: bool = False
    out_of_office_until: datetime | None = None
    active: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    out_of_office_periods: tuple[Absence, ...] = ()
    manager: str | None = None


def outside_working_hours(working_hours: dict[str, Any] | None, now: datetime) -> str | None:
    """Why ``now`` is outside the rep's hours (in the rep's time zone), or None."""
    if not working_hours:
        return None
    tz = ZoneInfo(working_hours.get("tz", "UTC"))
    local = now.astimezone(tz)
    days = working_hours.get("days") or list(WEEKDAYS[:5])
    if WEEKDAYS[local.weekday()] not in days:
        return f"not a working day in {tz.key} ({WEEKDAYS[local.weekday()]})"
    start = time.fromisoformat(working_hours.get("start", "00:00"))
    end = time.fromisoformat(working_hours.get("end", "23:59"))
    if not start <= local.time().replace(tzinfo=None) < end:
        return f"outside working hours {start:%H:%M}-{end:%H:%M} {tz.key}"
    return None


def unavailable_reason(rep: RepView, now: datetime, assigned_today: int) -> str | None:
    """Why ``rep`` cannot take a lead now, or None when they can."""
    if not rep.active:
        return "inactive"
    if rep.out_of_office and (rep.out_of_office_until is None or rep.out_of_office_until > now):
        until = f" until {rep.out_of_office_until.isoformat()}" if rep.out_of_office_until else ""
        return f"out of office{until}"
    for period in rep.out_of_office_periods:
        if period.start <= now < period.end:
            why = f": {period.reason}" if period.reason else ""
            return (
                f"out of office (planned {period.start.isoformat()} to "
                f"{period.end.isoformat()}{why})"
            )
    if rep.capacity_per_day is not None and assigned_today >= rep.capacity_per_day:
        return f"at daily capacity ({assigned_today}/{rep.capacity_per_day})"
    return outside_working_hours(rep.working_hours, now)


def rep_snapshot(rep: RepView) -> dict[str, Any]:
    """``rep`` as JSON (a directory snapshot, for decision replay)."""
    return {
        "id": rep.id,
        "role": rep.role,
        "team": rep.team,
        "territories": list(rep.territories),
        "segments": list(rep.segments),
        "capacity_per_day": rep.capacity_per_day,
        "weight": rep.weight,
        "working_hours": rep.working_hours,
        "out_of_office": rep.out_of_office,
        "out_of_office_until": (
            rep.out_of_office_until.isoformat() if rep.out_of_office_until else None
        ),
        "out_of_office_periods": [
            {"from": p.start.isoformat(), "to": p.end.isoformat(), "reason": p.reason}
            for p in rep.out_of_office_periods
        ],
        "active": rep.active,
        "manager": rep.manager,
    }


def rep_from_snapshot(data: dict[str, Any]) -> RepView:
    until = data.get("out_of_office_until")
    return RepView(
        id=data["id"],
        role=data["role"],
        team=data.get("team"),
        territories=tuple(data.get("territories") or ()),
        segments=tuple(data.get("segments") or ()),
        capacity_per_day=data.get("capacity_per_day"),
        weight=data.get("weight", 1.0),
        working_hours=data.get("working_hours"),
        out_of_office=data.get("out_of_office", False),
        out_of_office_until=datetime.fromisoformat(until) if until else None,
        out_of_office_periods=absences(data.get("out_of_office_periods")),
        active=data.get("active", True),
        manager=data.get("manager"),
    )


def business_deadline(
    start: datetime, minutes: int, working_hours: dict[str, Any] | None
) -> datetime:
    """``minutes`` of the rep's working time from ``start``: the clock runs only inside
    their working hours on their working days, in their time zone (each day's window is
    placed with that day's UTC offset, so daylight-saving changes are respected). Without
    working hours — or none within a year — the clock runs all the time."""
    plain = start + timedelta(minutes=minutes)
    if not working_hours:
        return plain
    tz = ZoneInfo(working_hours.get("tz", "UTC"))
    days = working_hours.get("days") or list(WEEKDAYS[:5])
    opens = time.fromisoformat(working_hours.get("start", "00:00"))
    closes = time.fromisoformat(working_hours.get("end", "23:59"))
    if closes <= opens:
        return plain
    remaining = timedelta(minutes=minutes)
    day = start.astimezone(tz).date()
    for _ in range(366):
        if WEEKDAYS[day.weekday()] in days:
            window_start = datetime.combine(day, opens, tzinfo=tz).astimezone(UTC)
            window_end = datetime.combine(day, closes, tzinfo=tz).astimezone(UTC)
            begin = max(window_start, start)
            if begin < window_end:
                if remaining <= window_end - begin:
                    return begin + remaining
                remaining -= window_end - begin
        day += timedelta(days=1)
    return plain
