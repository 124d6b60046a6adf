"""What ops read instead of raw protocol words: connector status and command status labels, and the smart-charging
explanation, in the user's language (the live badges take `charge_point_status_labels` into their JavaScript)."""

from __future__ import annotations

import pytest
from django.utils import translation

from apps.stations.models import ChargePointStatus, CommandStatus
from apps.stations.templatetags.station_status import charge_point_status_labels
from tests.energy.test_optimizer import ac, run, site_with


@pytest.mark.parametrize(
    ("language", "charging", "suspended", "timed_out"),
    [
        ("en", "Charging", "Suspended by the charger", "Timed out"),
        ("de", "Lädt", "Von der Ladestation pausiert", "Zeitüberschreitung"),
        ("fr", "En charge", "Suspendue par la borne", "Délai dépassé"),
    ],
)
def test_status_words_are_labels_in_the_users_language(
    language: str, charging: str, suspended: str, timed_out: str
) -> None:
    with translation.override(language):
        labels = charge_point_status_labels()
        assert set(labels) == set(ChargePointStatus.values)  # every OCPP status word has a label
        assert (labels["Charging"], labels["SuspendedEVSE"]) == (charging, suspended)
        assert str(CommandStatus.TIMEOUT.label) == timed_out


def test_a_smart_charging_explanation_is_in_the_users_language() -> None:
    result = run(site_with(3, grid_a=48.0), [ac(0, vehicle_max_current_a=10.0), ac(1), ac(2)])
    allocation = result.sessions["s0"]
    with translation.override("en"):
        english = allocation.explanation
    with translation.override("de"):
        german = allocation.explanation
    assert english.startswith("10.0 A on L1+L2+L3: all it can take (vehicle)")
    assert german.startswith("10.0 A auf L1+L2+L3: alles, was es aufnehmen kann (Fahrzeug)")
    assert german != english
