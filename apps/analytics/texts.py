"""The sentences alerts are stored with (English: the API, webhooks and logs read them so) and their translations
for people: the console and the alert e-mails show `alert_message(alert)` in the reader's language.

Every rule that raises an alert fills one of these shapes (`rules.py`, and the smart-charging loop of `energy` for a
charger that refuses profiles); a message of another shape (older rows) is shown as stored.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_noop

from apps.core.stored_text import StoredText, translated

CONNECTOR_FAULTED = StoredText(gettext_noop("Connector %(connector)s faulted: %(code)s"))
COMMAND_REJECTED = StoredText(gettext_noop("%(action)s rejected"))
COMMAND_ERROR = StoredText(gettext_noop("%(action)s error"))
COMMAND_TIMEOUT = StoredText(gettext_noop("%(action)s timeout"))
COMMAND_FAILED = {"rejected": COMMAND_REJECTED, "error": COMMAND_ERROR, "timeout": COMMAND_TIMEOUT}
SECURITY_EVENT_WITH_INFO = StoredText(gettext_noop("Security event %(type)s: %(info)s"))
SECURITY_EVENT = StoredText(gettext_noop("Security event %(type)s"))
POWER_ABOVE_RATING = StoredText(gettext_noop("%(power)s W on a %(rating)s W connector"))
CHARGER_OFFLINE = StoredText(gettext_noop("%(charger)s offline since %(at)s UTC"))
SESSION_TOO_LONG = StoredText(gettext_noop("Session %(session)s running since %(at)s UTC"))
NO_ENERGY = StoredText(gettext_noop("Session %(session)s: no energy after %(minutes)s min"))
ENERGY_WITHOUT_SESSION = StoredText(gettext_noop("Connector %(connector)s: %(energy)s Wh metered with no session"))
CERTIFICATE_EXPIRED = StoredText(gettext_noop("%(type)s %(serial)s expired %(at)s UTC"))
CERTIFICATE_EXPIRES = StoredText(gettext_noop("%(type)s %(serial)s expires %(at)s UTC"))
PROFILE_NOT_CONTROLLED = StoredText(
    gettext_noop(
        "Charger %(charger)s answered %(status)s to a %(purpose)s of %(limit)s %(unit)s: "
        "it is no longer controlled and is reserved at its full rating."
    )
)

# by alert kind (AlertKind values), the longer of two overlapping shapes first
SHAPES: dict[str, list[StoredText]] = {
    "connector_faulted": [CONNECTOR_FAULTED],
    "command_failed": [COMMAND_REJECTED, COMMAND_ERROR, COMMAND_TIMEOUT],
    "profile_rejected": [PROFILE_NOT_CONTROLLED, COMMAND_REJECTED, COMMAND_ERROR, COMMAND_TIMEOUT],
    "security_event": [SECURITY_EVENT_WITH_INFO, SECURITY_EVENT],
    "power_above_rating": [POWER_ABOVE_RATING],
    "charger_offline": [CHARGER_OFFLINE],
    "session_too_long": [SESSION_TOO_LONG],
    "no_energy": [NO_ENERGY],
    "energy_without_session": [ENERGY_WITHOUT_SESSION],
    "certificate_expiring": [CERTIFICATE_EXPIRED, CERTIFICATE_EXPIRES],
}


def alert_message(alert: Any) -> str:
    """The alert's stored message in the active language (as stored when its shape is unknown)."""
    return translated(alert.message, SHAPES.get(alert.kind, []))
