"""The console's command forms: every OCPP 1.6 command a person can send from a charge point page, grouped, with
a human name and a form of labelled fields (never a raw JSON box). A form builds the wire payload and has it
checked exactly as the API's is (`stations.services.command_validate`: the 1.6 schema and specification, this
charger's connectors, configuration and list version); each refusal is shown on the field it concerns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from apps.stations import services as station_services
from apps.stations.models import ChargePoint

AVAILABILITY = [
    ("Operative", _("Operative (available to drivers)")),
    ("Inoperative", _("Inoperative (out of service)")),
]
RESET_TYPES = [("Soft", _("Soft (restart the software)")), ("Hard", _("Hard (reboot the charger)"))]
PURPOSES = [
    ("TxDefaultProfile", _("Default for every transaction (TxDefaultProfile)")),
    ("TxProfile", _("This transaction only (TxProfile)")),
    ("ChargePointMaxProfile", _("Whole charger maximum (ChargePointMaxProfile)")),
]
KINDS = [("Absolute", _("Absolute")), ("Recurring", _("Recurring")), ("Relative", _("Relative"))]
RECURRENCY = [("Daily", _("Daily")), ("Weekly", _("Weekly"))]
RATE_UNITS = [("A", _("Ampere (A)")), ("W", _("Watt (W)"))]
UPDATE_TYPES = [("Full", _("Full (replace the whole list)")), ("Differential", _("Differential (add, change, remove)"))]
TAG_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx")
TRIGGERS = [
    (name, name)
    for name in (
        "StatusNotification",
        "BootNotification",
        "Heartbeat",
        "MeterValues",
        "FirmwareStatusNotification",
        "DiagnosticsStatusNotification",
    )
]


def _optional(choices: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return [("", "—"), *choices]


CONNECTOR = _("Connector")


def _connector(*, required: bool = True, whole: bool = False, label: Any = CONNECTOR) -> forms.IntegerField:
    help_text = _("0 means the whole charger.") if whole else ""
    return forms.IntegerField(label=label, required=required, min_value=0 if whole else None, help_text=help_text)


def _when(label: Any, *, required: bool = True) -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=required,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


def _wire(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Decimal):
        return float(value)
    return value


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """Form values to the wire: blanks left out (optional OCPP fields are absent, not null)."""
    return {key: _wire(value) for key, value in data.items() if value not in (None, "")}


@dataclass(frozen=True)
class CommandSpec:
    action: str
    label: Any  # lazily translated texts (gettext_lazy)
    group: Any
    description: Any
    fields: Callable[[], dict[str, forms.Field]] = dict
    build: Callable[[dict[str, Any]], dict[str, Any]] = _plain
    # dotted wire path (prefix) -> form field, for paths that are not a top-level field of the same name
    paths: dict[str, str] = field(default_factory=dict)


def _local_list(data: dict[str, Any]) -> dict[str, Any]:
    entries = []
    for line in data["entries"].splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0].startswith("-"):
            entries.append({"idTag": parts[0][1:]})
            continue
        status = parts[1] if len(parts) > 1 else "Accepted"
        entries.append({"idTag": parts[0], "idTagInfo": {"status": status}})
    return {
        "listVersion": data["listVersion"],
        "updateType": data["updateType"],
        "localAuthorizationList": entries,
    }


def _clean_entries(value: str) -> str:
    for number, line in enumerate(value.splitlines(), 1):
        parts = line.split()
        if len(parts) > 2 or (len(parts) == 2 and parts[1] not in TAG_STATUSES):
            raise forms.ValidationError(
                _("Line %(number)s: write an id tag, optionally followed by one of %(statuses)s.")
                % {"number": number, "statuses": ", ".join(TAG_STATUSES)}
            )
    return value


class EntriesField(forms.CharField):
    def clean(self, value: Any) -> Any:
        return _clean_entries(super().clean(value))


def _profile(data: dict[str, Any]) -> dict[str, Any]:
    period: dict[str, Any] = {"startPeriod": 0, "limit": _wire(data["limit"])}
    schedule = _plain(
        {
            "chargingRateUnit": data["chargingRateUnit"],
            "duration": data.get("duration"),
            "chargingSchedulePeriod": [period],
        }
    )
    profile = _plain(
        {
            "chargingProfileId": data["chargingProfileId"],
            "transactionId": data.get("transactionId"),
            "stackLevel": data["stackLevel"],
            "chargingProfilePurpose": data["chargingProfilePurpose"],
            "chargingProfileKind": data["chargingProfileKind"],
            "recurrencyKind": data.get("recurrencyKind"),
            "chargingSchedule": schedule,
        }
    )
    return {"connectorId": data["connectorId"], "csChargingProfiles": profile}


def _get_configuration(data: dict[str, Any]) -> dict[str, Any]:
    keys = [key.strip() for key in data.get("key", "").replace("\n", ",").split(",") if key.strip()]
    return {"key": keys} if keys else {}


CERTIFICATE_TYPES = [
    ("CentralSystemRootCertificate", _("Central system root (CentralSystemRootCertificate)")),
    ("ManufacturerRootCertificate", _("Manufacturer root (ManufacturerRootCertificate)")),
]
HASH_ALGORITHMS = [("SHA256", _("SHA-256")), ("SHA384", _("SHA-384")), ("SHA512", _("SHA-512"))]
LOG_TYPES = [("DiagnosticsLog", _("Diagnostics log")), ("SecurityLog", _("Security log"))]
EXTENDED_TRIGGERS = [
    (name, name)
    for name in (
        "BootNotification",
        "LogStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "SignChargePointCertificate",
        "StatusNotification",
    )
]


def _pem(label: Any) -> forms.CharField:
    return forms.CharField(
        label=label, widget=forms.Textarea(attrs={"rows": 6}), help_text=_("PEM, from -----BEGIN CERTIFICATE-----.")
    )


def _certificate_hash(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "certificateHashData": {
            key: data[key] for key in ("hashAlgorithm", "issuerNameHash", "issuerKeyHash", "serialNumber")
        }
    }


def _get_log(data: dict[str, Any]) -> dict[str, Any]:
    log = _plain({"oldestTimestamp": data.get("oldestTimestamp"), "latestTimestamp": data.get("latestTimestamp")})
    extra = _plain({"retries": data.get("retries"), "retryInterval": data.get("retryInterval")})
    return {"logType": data["logType"], "requestId": data["requestId"], "log": log, **extra}


def _signed_firmware(data: dict[str, Any]) -> dict[str, Any]:
    firmware = _plain(
        {
            "location": data["location"],
            "retrieveDateTime": data["retrieveDateTime"],
            "installDateTime": data.get("installDateTime"),
            "signingCertificate": data["signingCertificate"],
            "signature": data["signature"],
        }
    )
    extra = _plain({"retries": data.get("retries"), "retryInterval": data.get("retryInterval")})
    return {"requestId": data["requestId"], "firmware": firmware, **extra}


SPECS: tuple[CommandSpec, ...] = (
    # --- transactions
    CommandSpec(
        "RemoteStartTransaction",
        _("Remote start"),
        _("Transactions"),
        _("Ask the charger to start charging for an id tag, as if the tag had been presented."),
        lambda: {
            "connectorId": _connector(required=False),
            "idTag": forms.CharField(
                label=_("Id tag"), max_length=20, help_text=_("The tag the session is billed to.")
            ),
        },
    ),
    CommandSpec(
        "RemoteStopTransaction",
        _("Remote stop"),
        _("Transactions"),
        _("Ask the charger to stop a running transaction."),
        lambda: {"transactionId": forms.IntegerField(label=_("Transaction id"), help_text=_("The session's number."))},
    ),
    CommandSpec(
        "UnlockConnector",
        _("Unlock connector"),
        _("Transactions"),
        _("Release a cable stuck in a connector (stops its transaction, if any)."),
        lambda: {"connectorId": _connector()},
    ),
    # --- reservations
    CommandSpec(
        "ReserveNow",
        _("Reserve now"),
        _("Reservations"),
        _("Hold a connector for an id tag until the expiry time."),
        lambda: {
            "connectorId": _connector(whole=True),
            "idTag": forms.CharField(label=_("Id tag"), max_length=20),
            "parentIdTag": forms.CharField(label=_("Parent id tag"), max_length=20, required=False),
            "expiryDate": _when(_("Expires at")),
            "reservationId": forms.IntegerField(label=_("Reservation id")),
        },
    ),
    CommandSpec(
        "CancelReservation",
        _("Cancel reservation"),
        _("Reservations"),
        _("Release a reservation made on this charger."),
        lambda: {"reservationId": forms.IntegerField(label=_("Reservation id"))},
    ),
    # --- availability
    CommandSpec(
        "ChangeAvailability",
        _("Change availability"),
        _("Availability and reset"),
        _("Take a connector (or the whole charger) in or out of service."),
        lambda: {
            "connectorId": _connector(whole=True),
            "type": forms.ChoiceField(label=_("Availability"), choices=AVAILABILITY),
        },
    ),
    CommandSpec(
        "Reset",
        _("Reset"),
        _("Availability and reset"),
        _("Restart the charger; running transactions are stopped first."),
        lambda: {"type": forms.ChoiceField(label=_("Reset type"), choices=RESET_TYPES)},
    ),
    CommandSpec(
        "TriggerMessage",
        _("Trigger message"),
        _("Availability and reset"),
        _("Ask the charger to send one of its messages now (e.g. its status)."),
        lambda: {
            "requestedMessage": forms.ChoiceField(label=_("Message"), choices=TRIGGERS),
            "connectorId": _connector(required=False),
        },
    ),
    # --- configuration
    CommandSpec(
        "GetConfiguration",
        _("Read configuration"),
        _("Configuration"),
        _("Read the charger's configuration keys (all of them, or the ones named)."),
        lambda: {
            "key": forms.CharField(
                label=_("Keys"), required=False, help_text=_("Comma-separated; leave empty to read every key.")
            )
        },
        _get_configuration,
    ),
    CommandSpec(
        "ChangeConfiguration",
        _("Change configuration"),
        _("Configuration"),
        _("Set one configuration key to a new value."),
        lambda: {
            "key": forms.CharField(label=_("Key"), max_length=50),
            "value": forms.CharField(label=_("Value"), max_length=500),
        },
    ),
    CommandSpec(
        "ClearCache",
        _("Clear authorization cache"),
        _("Configuration"),
        _("Empty the charger's cache of id tags it has seen."),
    ),
    CommandSpec(
        "DataTransfer",
        _("Vendor data transfer"),
        _("Configuration"),
        _("Send a vendor-specific message."),
        lambda: {
            "vendorId": forms.CharField(label=_("Vendor id"), max_length=255),
            "messageId": forms.CharField(label=_("Message id"), max_length=50, required=False),
            "data": forms.CharField(label=_("Data"), required=False, widget=forms.Textarea(attrs={"rows": 3})),
        },
    ),
    # --- smart charging
    CommandSpec(
        "SetChargingProfile",
        _("Set charging limit"),
        _("Smart charging"),
        _("Send a charging profile with one limit from its start (a constant limit)."),
        lambda: {
            "connectorId": _connector(whole=True),
            "chargingProfilePurpose": forms.ChoiceField(label=_("Purpose"), choices=PURPOSES),
            "chargingProfileKind": forms.ChoiceField(label=_("Kind"), choices=KINDS, initial="Absolute"),
            "recurrencyKind": forms.ChoiceField(label=_("Recurrence"), choices=_optional(RECURRENCY), required=False),
            "transactionId": forms.IntegerField(
                label=_("Transaction id"), required=False, help_text=_("Only for a transaction's own profile.")
            ),
            "chargingProfileId": forms.IntegerField(label=_("Profile id"), min_value=0, initial=1),
            "stackLevel": forms.IntegerField(label=_("Stack level"), min_value=0, initial=0),
            "chargingRateUnit": forms.ChoiceField(label=_("Unit"), choices=RATE_UNITS),
            "limit": forms.DecimalField(label=_("Limit"), min_value=0, decimal_places=1, max_digits=9),
            "duration": forms.IntegerField(
                label=_("Duration (s)"), required=False, min_value=1, help_text=_("Empty: until replaced.")
            ),
        },
        _profile,
        {
            "csChargingProfiles.chargingSchedule.chargingSchedulePeriod": "limit",
            "csChargingProfiles.chargingSchedule.chargingRateUnit": "chargingRateUnit",
            "csChargingProfiles.chargingSchedule.duration": "duration",
            "csChargingProfiles.chargingProfileId": "chargingProfileId",
            "csChargingProfiles.stackLevel": "stackLevel",
            "csChargingProfiles.chargingProfilePurpose": "chargingProfilePurpose",
            "csChargingProfiles.chargingProfileKind": "chargingProfileKind",
            "csChargingProfiles.recurrencyKind": "recurrencyKind",
            "csChargingProfiles.transactionId": "transactionId",
        },
    ),
    CommandSpec(
        "ClearChargingProfile",
        _("Clear charging limits"),
        _("Smart charging"),
        _("Remove charging profiles: the one with this id, or all that match the other fields (all, if empty)."),
        lambda: {
            "id": forms.IntegerField(label=_("Profile id"), required=False),
            "connectorId": _connector(required=False, whole=True),
            "chargingProfilePurpose": forms.ChoiceField(
                label=_("Purpose"), choices=_optional(PURPOSES), required=False
            ),
            "stackLevel": forms.IntegerField(label=_("Stack level"), required=False, min_value=0),
        },
    ),
    CommandSpec(
        "GetCompositeSchedule",
        _("Read the effective limit"),
        _("Smart charging"),
        _("Ask the charger what limits it will apply over the coming period."),
        lambda: {
            "connectorId": _connector(whole=True),
            "duration": forms.IntegerField(label=_("Period (s)"), min_value=1, initial=3600),
            "chargingRateUnit": forms.ChoiceField(label=_("Unit"), choices=_optional(RATE_UNITS), required=False),
        },
    ),
    # --- local authorization list
    CommandSpec(
        "GetLocalListVersion",
        _("Read local list version"),
        _("Local authorization list"),
        _("Ask which version of the local id tag list the charger holds."),
    ),
    CommandSpec(
        "SendLocalList",
        _("Send local list"),
        _("Local authorization list"),
        _("Give the charger id tags it may accept while offline."),
        lambda: {
            "listVersion": forms.IntegerField(label=_("List version"), min_value=1),
            "updateType": forms.ChoiceField(label=_("Update"), choices=UPDATE_TYPES),
            "entries": EntriesField(
                label=_("Id tags"),
                required=False,
                widget=forms.Textarea(attrs={"rows": 5}),
                help_text=_(
                    "One id tag per line, optionally followed by a status (Accepted, Blocked, Expired, Invalid); "
                    "in a differential update, -TAG removes a tag."
                ),
            ),
        },
        _local_list,
        {"localAuthorizationList": "entries"},
    ),
    # --- firmware and diagnostics
    CommandSpec(
        "UpdateFirmware",
        _("Update firmware"),
        _("Firmware and diagnostics"),
        _("Tell the charger where to download a firmware image and when to install it."),
        lambda: {
            "location": forms.URLField(label=_("Firmware URL"), max_length=1000),
            "retrieveDate": _when(_("Download from")),
            "retries": forms.IntegerField(label=_("Retries"), required=False, min_value=0),
            "retryInterval": forms.IntegerField(label=_("Retry interval (s)"), required=False, min_value=0),
        },
    ),
    CommandSpec(
        "GetDiagnostics",
        _("Fetch diagnostics"),
        _("Firmware and diagnostics"),
        _("Ask the charger to upload its diagnostics file to the platform (listed under Diagnostics uploads)."),
        lambda: {
            "startTime": _when("From", required=False),
            "stopTime": _when("Until", required=False),
            "retries": forms.IntegerField(label=_("Retries"), required=False, min_value=0),
            "retryInterval": forms.IntegerField(label=_("Retry interval (s)"), required=False, min_value=0),
        },
    ),
    # --- security extension (OCPP 1.6 security whitepaper, edition 3)
    CommandSpec(
        "InstallCertificate",
        _("Install root certificate"),
        _("Security"),
        _("Install a root certificate the charger uses to trust the central system or firmware signers."),
        lambda: {
            "certificateType": forms.ChoiceField(label=_("Certificate type"), choices=CERTIFICATE_TYPES),
            "certificate": _pem("Certificate"),
        },
    ),
    CommandSpec(
        "GetInstalledCertificateIds",
        _("List installed certificates"),
        _("Security"),
        _("Ask which root certificates of a type the charger holds (shown under its certificates)."),
        lambda: {"certificateType": forms.ChoiceField(label=_("Certificate type"), choices=CERTIFICATE_TYPES)},
    ),
    CommandSpec(
        "DeleteCertificate",
        _("Delete certificate"),
        _("Security"),
        _("Remove an installed root certificate, named by its hashes and serial number."),
        lambda: {
            "hashAlgorithm": forms.ChoiceField(label=_("Hash algorithm"), choices=HASH_ALGORITHMS),
            "issuerNameHash": forms.CharField(label=_("Issuer name hash"), max_length=128),
            "issuerKeyHash": forms.CharField(label=_("Issuer key hash"), max_length=128),
            "serialNumber": forms.CharField(label=_("Serial number"), max_length=40),
        },
        _certificate_hash,
        {"certificateHashData": "serialNumber"},
    ),
    CommandSpec(
        "CertificateSigned",
        _("Send signed certificate"),
        _("Security"),
        _("Send the charger its signed client certificate chain (normally sent automatically after SignCertificate)."),
        lambda: {"certificateChain": _pem(_("Certificate chain"))},
    ),
    CommandSpec(
        "ExtendedTriggerMessage",
        _("Trigger message (extended)"),
        _("Security"),
        _("Ask the charger to send a message now, including a new certificate signing request."),
        lambda: {
            "requestedMessage": forms.ChoiceField(label=_("Message"), choices=EXTENDED_TRIGGERS),
            "connectorId": _connector(required=False),
        },
    ),
    CommandSpec(
        "GetLog",
        _("Fetch log"),
        _("Security"),
        _("Ask the charger to upload its diagnostics or security log to the platform."),
        lambda: {
            "logType": forms.ChoiceField(label=_("Log"), choices=LOG_TYPES),
            "requestId": forms.IntegerField(label=_("Request id"), initial=1),
            "oldestTimestamp": _when("From", required=False),
            "latestTimestamp": _when("Until", required=False),
            "retries": forms.IntegerField(label=_("Retries"), required=False, min_value=0),
            "retryInterval": forms.IntegerField(label=_("Retry interval (s)"), required=False, min_value=0),
        },
        _get_log,
        {"log.oldestTimestamp": "oldestTimestamp", "log.latestTimestamp": "latestTimestamp"},
    ),
    CommandSpec(
        "SignedUpdateFirmware",
        _("Update firmware (signed)"),
        _("Security"),
        _("Tell the charger where to download a signed firmware image, with its signing certificate and signature."),
        lambda: {
            "requestId": forms.IntegerField(label=_("Request id"), initial=1),
            "location": forms.URLField(label=_("Firmware URL"), max_length=512),
            "retrieveDateTime": _when(_("Download from")),
            "installDateTime": _when(_("Install at"), required=False),
            "signingCertificate": _pem(_("Signing certificate")),
            "signature": forms.CharField(
                label=_("Signature (base64)"), max_length=800, widget=forms.Textarea(attrs={"rows": 3})
            ),
            "retries": forms.IntegerField(label=_("Retries"), required=False, min_value=0),
            "retryInterval": forms.IntegerField(label=_("Retry interval (s)"), required=False, min_value=0),
        },
        _signed_firmware,
        {
            "firmware.location": "location",
            "firmware.retrieveDateTime": "retrieveDateTime",
            "firmware.installDateTime": "installDateTime",
            "firmware.signingCertificate": "signingCertificate",
            "firmware.signature": "signature",
        },
    ),
)

BY_ACTION: dict[str, CommandSpec] = {spec.action: spec for spec in SPECS}
assert set(BY_ACTION) == set(station_services.SERVER_ACTIONS), "every OCPP command needs a console form"


def command_groups() -> list[tuple[str, list[CommandSpec]]]:
    groups: dict[str, list[CommandSpec]] = {}
    for spec in SPECS:
        groups.setdefault(spec.group, []).append(spec)
    return list(groups.items())


class CommandForm(forms.Form):
    """One OCPP command to one charger, its fields those of `BY_ACTION[action]`; the payload is checked as
    `send_command` checks it and every refusal is shown on its field (or above the form)."""

    timeout = forms.IntegerField(
        label=_("Wait for the answer (s)"), min_value=1, max_value=120, initial=30, widget=forms.NumberInput
    )

    def __init__(self, *args: Any, charge_point: ChargePoint, action: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.charge_point = charge_point
        self.spec = BY_ACTION[action]
        timeout = self.fields.pop("timeout")
        self.fields.update(self.spec.fields())
        connectors = sorted(charge_point.evses.values_list("connector_id", flat=True))
        if "connectorId" in self.fields and connectors:
            known = gettext("Connectors of this charger: %(connectors)s.") % {
                "connectors": ", ".join(str(n) for n in connectors)
            }
            help_text = self.fields["connectorId"].help_text
            self.fields["connectorId"].help_text = f"{known} {help_text}".strip()
        for form_field in self.fields.values():
            if isinstance(form_field, forms.DateTimeField):
                form_field.help_text = gettext("Time zone: %(zone)s.") % {"zone": timezone.get_current_timezone_name()}
        self.fields["timeout"] = timeout
        self.payload: dict[str, Any] = {}

    def _field_for(self, path: str) -> str | None:
        for prefix, name in sorted(self.spec.paths.items(), key=lambda item: -len(item[0])):
            if path == prefix or path.startswith(prefix + "."):
                return name
        top = path.split(".", 1)[0]
        return top if top in self.fields and top != "timeout" else None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        values = {name: data.get(name) for name in self.fields if name != "timeout"}
        payload = self.spec.build(values)
        probe = payload
        if self.spec.action == "GetDiagnostics":
            probe = {**payload, "location": station_services.diagnostics_location(token="0" * 32)}
        if self.spec.action == "GetLog":  # the upload address is the platform's, given when it is sent
            location = station_services.diagnostics_location(token="0" * 32)
            probe = {**payload, "log": {"remoteLocation": location, **payload.get("log", {})}}
        try:
            station_services.command_validate(charge_point=self.charge_point, action=self.spec.action, payload=probe)
        except station_services.InvalidCommand as error:
            for path, messages in error.paths.items():
                name = self._field_for(path)
                for message in messages:
                    self.add_error(name, message if name else f"{path}: {message}")
            return data
        self.payload = payload
        return data
