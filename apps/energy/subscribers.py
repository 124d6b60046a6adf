"""Event subscribers of the energy app (listed in apps.core.events.SUBSCRIBERS): they only ask for a
debounced recompute of the charger's site; the Celery task does the work and sends the profiles."""

from __future__ import annotations

from apps.core import events
from apps.energy import selectors, services
from apps.energy.models import Allocation

# a meter value changes the picture when the draw moved this far from what the car was allocated
POWER_CHANGE_W = 2_000  # above the optimizer's draw headroom (2 A x 3 x 230 V), so a capped car does not retrigger


def _request(charge_point_id: int, trigger: str) -> None:
    site_id = selectors.site_root_id_for_charge_point(charge_point_id=charge_point_id)
    if site_id is not None:
        services.recompute_request(site_id=site_id, trigger=trigger)


def session_started(event: events.SessionStarted) -> None:
    _request(event.charge_point_id, "session_started")


def session_ended(event: events.SessionEnded) -> None:
    _request(event.charge_point_id, "session_ended")


def session_meter_updated(event: events.SessionMeterUpdated) -> None:
    if event.power_w is None:
        return
    allocated = (
        Allocation.objects.filter(session_id=event.session_id).order_by("-at").values_list("power_w", flat=True).first()
    )
    if allocated is None or abs(allocated - event.power_w) >= POWER_CHANGE_W:
        _request(event.charge_point_id, "meter")


def session_preferences_changed(event: events.SessionPreferencesChanged) -> None:
    _request(event.charge_point_id, "preferences")
