"""Time-dependent limits of an electrical node: time-of-use windows, grid signals, safety margin.

Pure Python (no Django): the optimizer and the replay benchmark use it, and so can the control loop.

Rules (all documented here because operators ask "why is my site at 60 %?"):

* A node's *static* limit is its physical rating: ``max_power_w`` (W, all phases together) and/or
  ``max_current_a`` (A per phase, for the node's own L1/L2/L3).
* A :class:`TimeOfUseWindow` applies in the site's **local wall-clock time** (IANA zone, so DST is
  handled by :mod:`zoneinfo`): on the listed weekdays from ``start`` (inclusive) to ``end``
  (exclusive). ``end <= start`` means the window runs past midnight into the next day (the weekday is
  the day the window starts). A window scales the static limit by ``percent`` and/or caps it with
  absolute values. On a DST change the window keeps its wall-clock meaning: 17:00-20:00 is always
  17:00-20:00 local, whatever the UTC offset; a window inside the skipped spring-forward hour is
  simply never active that night, and one inside the repeated autumn hour is active twice.
* A :class:`GridSignal` is a cap posted by the grid operator or energy company, valid on
  ``[valid_from, valid_until)``. When several are valid at once, the most recently issued one wins
  (a later signal replaces an earlier curtailment; it can lift it too), and it can never lift the node
  above its static / time-of-use limit.
* The safety margin (percent) is taken off the resulting limit last.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

INF = math.inf
PHASE_NAMES = ("L1", "L2", "L3")

PhaseValues = tuple[float, float, float]
Rotation = tuple[int, int, int]

IDENTITY_ROTATION: Rotation = (0, 1, 2)

# OCPP 1.6 ConnectorPhaseRotation: position i names the supply phase (R=L1, S=L2, T=L3) wired to the
# charger's L(i+1). "RST" is standard wiring; "STR" means charger L1 is on supply L2, and so on.
_OCPP_ROTATIONS = {"RST", "RTS", "SRT", "STR", "TRS", "TSR"}


def rotation_from_ocpp(value: str | None) -> Rotation:
    """Map an OCPP ``ConnectorPhaseRotation`` value to a rotation tuple (``NotApplicable``/``Unknown`` -> standard)."""
    if value is None or value.upper() not in _OCPP_ROTATIONS:
        return IDENTITY_ROTATION
    letters = value.upper()
    return ("RST".index(letters[0]), "RST".index(letters[1]), "RST".index(letters[2]))


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _require_aware(at: datetime, what: str) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {at!r}")


@dataclass(frozen=True, slots=True)
class TimeOfUseWindow:
    """A recurring window in the site's local time, e.g. weekdays 17:00-20:00 at 60 %."""

    weekdays: frozenset[int]  # 0 = Monday ... 6 = Sunday (the day the window starts)
    start: time
    end: time  # exclusive; end <= start runs past midnight
    percent: float | None = None  # of the node's static limits
    max_power_w: float | None = None  # absolute caps while the window is active
    max_current_a: float | None = None
    label: str = ""

    def active_at_local(self, local: datetime) -> bool:
        t = local.timetz().replace(tzinfo=None)
        day = local.weekday()
        if self.start < self.end:
            return day in self.weekdays and self.start <= t < self.end
        # Runs past midnight (or, start == end, all day from `start` to `start` the next day).
        if t >= self.start:
            return day in self.weekdays
        return t < self.end and (day - 1) % 7 in self.weekdays

    def describe(self) -> str:
        days = ",".join(("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")[d] for d in sorted(self.weekdays))
        caps = []
        if self.percent is not None:
            caps.append(f"{self.percent:g}%")
        if self.max_power_w is not None:
            caps.append(f"<= {self.max_power_w:g} W")
        if self.max_current_a is not None:
            caps.append(f"<= {self.max_current_a:g} A")
        name = f"{self.label} " if self.label else ""
        return f"time-of-use {name}{days} {self.start:%H:%M}-{self.end:%H:%M} {' '.join(caps)}".strip()


WEEKDAYS = frozenset(range(5))
ALL_DAYS = frozenset(range(7))


@dataclass(frozen=True, slots=True)
class GridSignal:
    """An external capacity limit for a node with a validity window (curtailment)."""

    valid_from: datetime
    valid_until: datetime
    max_power_w: float | None = None
    max_current_a: float | None = None  # per phase
    issued_at: datetime | None = None  # the latest issued valid signal wins; defaults to valid_from
    source: str = ""

    def active(self, at: datetime) -> bool:
        return self.valid_from <= at < self.valid_until

    @property
    def issued(self) -> datetime:
        return self.issued_at or self.valid_from


@dataclass(frozen=True, slots=True)
class EffectiveLimit:
    """A node's limit at one instant. ``inf`` means "no limit"; currents are per node-local phase."""

    max_power_w: float
    max_current_a: PhaseValues
    sources: tuple[str, ...]

    @property
    def unlimited(self) -> bool:
        return self.max_power_w == INF and all(c == INF for c in self.max_current_a)


def static_currents(value: float | Sequence[float | None] | None) -> PhaseValues:
    """Normalise a per-phase current spec (one value for all phases, or one per phase) to a triple."""
    if value is None:
        return (INF, INF, INF)
    if isinstance(value, int | float):
        v = float(value)
        return (v, v, v)
    vals = [INF if v is None else float(v) for v in value]
    if len(vals) != 3:
        raise ValueError("max_current_a needs one value or three (L1, L2, L3)")
    return (vals[0], vals[1], vals[2])


def effective_limit(
    *,
    max_power_w: float | None,
    max_current_a: float | Sequence[float | None] | None,
    safety_margin_pct: float = 0.0,
    windows: Iterable[TimeOfUseWindow] = (),
    signals: Iterable[GridSignal] = (),
    at: datetime,
    tz: str | ZoneInfo = "UTC",
) -> EffectiveLimit:
    """Resolve a node's effective limit at ``at`` (aware) in the site's IANA zone ``tz``."""
    _require_aware(at, "at")
    power = INF if max_power_w is None else float(max_power_w)
    c1, c2, c3 = static_currents(max_current_a)
    sources: list[str] = []
    if power != INF or c1 != INF or c2 != INF or c3 != INF:
        sources.append("static")

    windows = tuple(windows)
    if windows:
        local = at.astimezone(tz if isinstance(tz, ZoneInfo) else zone(tz))
        for window in windows:
            if not window.active_at_local(local):
                continue
            sources.append(window.describe())
            if window.percent is not None:
                f = window.percent / 100.0
                power, c1, c2, c3 = power * f, c1 * f, c2 * f, c3 * f
            if window.max_power_w is not None:
                power = min(power, float(window.max_power_w))
            if window.max_current_a is not None:
                m = float(window.max_current_a)
                c1, c2, c3 = min(c1, m), min(c2, m), min(c3, m)

    latest: GridSignal | None = None
    for signal in signals:
        if signal.active(at) and (latest is None or signal.issued >= latest.issued):
            latest = signal
    if latest is not None:
        # in the site's zone, named, as the time-of-use windows are (never a raw ISO instant)
        until = latest.valid_until.astimezone(tz if isinstance(tz, ZoneInfo) else zone(tz))
        sources.append(
            f"grid signal{' ' + latest.source if latest.source else ''} until {until:%Y-%m-%d %H:%M} {until.tzname()}"
        )
        if latest.max_power_w is not None:
            power = min(power, float(latest.max_power_w))
        if latest.max_current_a is not None:
            m = float(latest.max_current_a)
            c1, c2, c3 = min(c1, m), min(c2, m), min(c3, m)

    if safety_margin_pct:
        f = 1.0 - safety_margin_pct / 100.0
        power, c1, c2, c3 = power * f, c1 * f, c2 * f, c3 * f
        sources.append(f"margin {safety_margin_pct:g}%")
    return EffectiveLimit(max_power_w=power, max_current_a=(c1, c2, c3), sources=tuple(sources))


def next_limit_change(
    *,
    windows: Iterable[TimeOfUseWindow] = (),
    signals: Iterable[GridSignal] = (),
    after: datetime,
    tz: str | ZoneInfo = "UTC",
    horizon: timedelta = timedelta(days=8),
) -> datetime | None:
    """The first instant after ``after`` at which a window or signal starts or ends (for scheduling a recompute).

    Window edges are found by walking local dates and resolving the wall-clock edge with zoneinfo
    (a wall time skipped by DST resolves to the instant just after the gap, as zoneinfo does with fold=0).
    """
    _require_aware(after, "after")
    candidates: list[datetime] = []
    for signal in signals:
        for edge in (signal.valid_from, signal.valid_until):
            if edge > after:
                candidates.append(edge)
    windows = tuple(windows)
    if windows:
        z = tz if isinstance(tz, ZoneInfo) else zone(tz)
        local = after.astimezone(z)
        first_day = local.date() - timedelta(days=1)
        days = horizon.days + 2
        for window in windows:
            for i in range(days):
                day = first_day + timedelta(days=i)
                if day.weekday() not in window.weekdays:
                    continue
                end_day = day if window.start < window.end else day + timedelta(days=1)
                for d, t in ((day, window.start), (end_day, window.end)):
                    edge = datetime.combine(d, t, tzinfo=z)
                    # Normalise through UTC so a non-existent wall time lands on a real instant.
                    edge_utc = edge.astimezone(after.tzinfo)
                    if edge_utc > after:
                        candidates.append(edge_utc)
    future = [c for c in candidates if c - after <= horizon]
    return min(future) if future else None
