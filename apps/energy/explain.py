"""Why a session got what it got, as a sentence in the active language (the admin's site load page, the stored
allocation rows). The optimizer stays free of Django; its ``SessionAllocation.explanation`` renders through here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils.translation import gettext

from apps.energy.limits import PHASE_NAMES

if TYPE_CHECKING:
    from apps.energy.optimizer import SessionAllocation


def _strategy(value: str) -> str:
    labels = {
        "equal_share": gettext("equal share"),
        "priority": gettext("priority"),
        "departure_aware": gettext("departure-aware"),
    }
    return labels.get(value, value)


def _source(source: str) -> str:
    """Where the most a session can take comes from ("vehicle", "node 12", ...)."""
    if source.startswith("node "):
        return gettext("node %(node)s") % {"node": source.removeprefix("node ")}
    labels = {
        "vehicle": gettext("vehicle"),
        "default maximum": gettext("default maximum"),
        "measured draw + headroom": gettext("measured draw + headroom"),
    }
    return labels.get(source, source)


def _phase(phase: str | None) -> str:
    return gettext("power") if phase == "power" else str(phase)


def explain(a: SessionAllocation) -> str:
    """'10.0 A on L1+L2+L3: all it can take (vehicle) (strategy equal share; rank 1; priority 0)'."""
    from apps.energy.optimizer import Reason, Supply

    r = a.reason
    if r is Reason.PROFILES_REJECTED:
        rating = ", ".join(f"{PHASE_NAMES[p]} {a.current_a[p]:.1f} A" for p in range(3))
        return gettext("charger %(charger)s rejects charging profiles: not controlled, reserved at (%(rating)s)") % {
            "charger": a.charge_point_id,
            "rating": rating,
        }
    if r is Reason.NOT_CONNECTED:
        return gettext("0: no wired phase reaches this connector")
    if a.supply is Supply.DC:
        shown = f"{a.power_w / 1000:.1f} kW"
    else:
        used = "+".join(PHASE_NAMES[p] for p in range(3) if a.current_a[p] > 0) or gettext("phases: %(count)s") % {
            "count": a.number_phases
        }
        shown = gettext("%(level)s on %(phases)s") % {"level": f"{a.level_a:.1f} A", "phases": used}
    show = a._show
    if r is Reason.BELOW_MINIMUM:
        text = gettext("0: it can take at most %(max)s (%(source)s), below the minimum %(min)s") % {
            "max": show(a.max_level_a),
            "source": _source(a.max_source),
            "min": show(a.min_level_a),
        }
    elif r is Reason.NO_CAPACITY:
        text = gettext(
            "0: node %(node)s (%(phase)s) has room for %(room)s, less than the minimum %(min)s; "
            "sessions ranked higher were served first"
        ) % {
            "node": a.binding_node_id,
            "phase": _phase(a.binding_phase),
            "room": show(a.room_a),
            "min": show(a.min_level_a),
        }
    elif r is Reason.AT_MAXIMUM:
        text = gettext("%(shown)s: all it can take (%(source)s)") % {"shown": shown, "source": _source(a.max_source)}
    else:
        text = gettext("%(shown)s: node %(node)s is full (%(phase)s); it could take up to %(max)s") % {
            "shown": shown,
            "node": a.binding_node_id,
            "phase": _phase(a.binding_phase),
            "max": show(a.max_level_a),
        }
    extra = [
        gettext("strategy %(strategy)s") % {"strategy": _strategy(a.strategy.value)},
        gettext("rank %(rank)s") % {"rank": a.rank},
        gettext("priority %(priority)s") % {"priority": a.priority},
    ]
    if a.needed_level_a is not None:
        extra.append(gettext("needs %(level)s to finish in time") % {"level": show(a.needed_level_a)})
    if a.draw_capped:
        extra.append(gettext("draws less than allowed: capped at draw + headroom, the rest went to others"))
    return f"{text} ({'; '.join(extra)})"
