from __future__ import annotations

import datetime as dt
import math
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from apps.core.api.money import money_as_strings
from apps.core.api.serializers import StrictModelSerializer, StrictSerializer
from apps.customers.models import Driver, Token, Vehicle
from apps.sessions.models import Cdr, ChargingSession, Reservation, SessionEvent
from apps.sessions.selectors import BoundingBox, Station
from apps.stations.models import ChargePoint, Connector
from apps.tenants.scoping import ScopedRelatedField


class SessionEventSerializer(StrictModelSerializer):
    class Meta:
        model = SessionEvent
        fields = ["from_status", "to_status", "reason", "at"]


class SessionSerializer(StrictModelSerializer):
    energy_wh_so_far = serializers.SerializerMethodField()

    class Meta:
        model = ChargingSession
        fields = [
            "id",
            "tenant",
            "status",
            "charge_point",
            "location",
            "evse",
            "connector_id",
            "id_tag",
            "auth_status",
            "auth_method",
            "auth_reason",
            "token",
            "driver",
            "business_customer",
            "contract",
            "vehicle",
            "reservation_id",
            "started_at",
            "stopped_at",
            "stop_reason",
            "meter_start_wh",
            "meter_stop_wh",
            "energy_wh",
            "energy_wh_so_far",
            "max_power_w",
            "last_power_w",
            "limit_duration",
            "limit_energy_wh",
            "limit_action",
            "limit_reached",
            "limit_reached_at",
            "limit_outcome",
            "currency",
            "cost_excl_vat",
            "cost_incl_vat",
            "pricing_error",
            "tariff",
            "departure_at",
            "energy_need_wh",
            "suspicious",
            "suspicious_reasons",
            "flags",
        ]
        read_only_fields = fields

    def get_energy_wh_so_far(self, obj: ChargingSession) -> int:
        if obj.energy_wh is not None:
            return obj.energy_wh
        return (obj.last_meter_wh or obj.meter_start_wh) - obj.meter_start_wh


class LiveCostSerializer(serializers.Serializer[Any]):
    currency = serializers.CharField()
    excl_vat = serializers.CharField()
    incl_vat = serializers.CharField()


class SessionLiveSerializer(SessionSerializer):
    duration_s = serializers.IntegerField(read_only=True)
    cost_so_far = LiveCostSerializer(read_only=True, allow_null=True)
    events = SessionEventSerializer(many=True, read_only=True)

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "duration_s", "cost_so_far", "events"]
        read_only_fields = fields


class CdrSerializer(StrictModelSerializer):
    """The OCPI CDR; amounts (`price`, `excl_vat`, `incl_vat`) as decimal strings, the API's money format."""

    class Meta:
        model = Cdr
        exclude: list[str] = []
        read_only_fields = [f.name for f in Cdr._meta.fields]

    def to_representation(self, instance: Cdr) -> dict[str, Any]:
        return money_as_strings(super().to_representation(instance))  # type: ignore[no-any-return]


class ReservationSerializer(StrictModelSerializer):
    class Meta:
        model = Reservation
        fields = [
            "id",
            "tenant",
            "charge_point",
            "connector_id",
            "driver",
            "token",
            "vehicle",
            "id_tag",
            "starts_at",
            "expires_at",
            "status",
            "command_id",
            "detail",
        ]
        read_only_fields = fields


class ReservationCreateSerializer(StrictSerializer):
    driver = ScopedRelatedField(queryset=Driver.objects.all())
    charge_point = ScopedRelatedField(queryset=ChargePoint.objects.all())
    connector_id = serializers.IntegerField(min_value=0, max_value=99, default=0)
    expires_at = serializers.DateTimeField()
    vehicle = ScopedRelatedField(queryset=Vehicle.objects.all(), required=False, allow_null=True)
    token_uid = serializers.CharField(required=False, max_length=36)


class SessionStartSerializer(StrictSerializer):
    """Start by charge point (+ connector) or by the QR code's payload (an EVSE id such as DE*VLT*E1234*1)."""

    driver = ScopedRelatedField(queryset=Driver.objects.all())
    charge_point = ScopedRelatedField(queryset=ChargePoint.objects.all(), required=False)
    connector_id = serializers.IntegerField(min_value=1, max_value=99, required=False)
    qr = serializers.CharField(required=False, max_length=255)
    token_uid = serializers.CharField(required=False, max_length=36)
    reservation = serializers.IntegerField(required=False, min_value=1)
    departure_at = serializers.DateTimeField(
        required=False, help_text="When the car leaves (in the future): smart charging plans for it."
    )
    energy_need_wh = serializers.IntegerField(
        required=False, min_value=1, max_value=2_000_000, help_text="Energy wanted in this session (Wh)."
    )

    def validate_departure_at(self, value: dt.datetime) -> dt.datetime:
        return _future(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("qr") and attrs.get("charge_point") is None:
            raise serializers.ValidationError({"charge_point": ["Give a charge point or a QR payload."]})
        return attrs


def _future(value: dt.datetime) -> dt.datetime:
    if value <= timezone.now():
        raise serializers.ValidationError("The departure time must be in the future.")
    return value


class SessionPreferencesSerializer(StrictSerializer):
    """OCPI ChargingPreferences of a running session: give one or both; null clears a value."""

    departure_at = serializers.DateTimeField(required=False, allow_null=True, help_text="When the car leaves.")
    energy_need_wh = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=2_000_000, help_text="Energy wanted in this session."
    )

    def validate_departure_at(self, value: dt.datetime | None) -> dt.datetime | None:
        return None if value is None else _future(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError({"departure_at": ["Give departure_at and/or energy_need_wh."]})
        return attrs


class RemoteStartSerializer(serializers.Serializer[Any]):
    """202: the charger accepted RemoteStartTransaction; it opens the session when the car is connected (its
    StartTransaction). The session gets `session_id` at once: no need to poll lists."""

    session_id = serializers.IntegerField(
        help_text=(
            "The id the session gets (its OCPP transactionId) when the charger starts it: "
            "`GET /api/v1/driver/sessions/{session_id}/` answers 404 until then, then the live view (status "
            "`active`, or `invalid` when the charger's start was refused); live updates on "
            "`/ws/sessions/{session_id}`. No session follows if the car is never connected (the charger gives up "
            "after its connection timeout)."
        )
    )
    command_id = serializers.IntegerField(
        help_text="The RemoteStartTransaction command (`GET /api/v1/commands/{command_id}/`)."
    )
    charge_point_id = serializers.IntegerField()
    connector_id = serializers.IntegerField(help_text="0: the charger chooses the connector.")
    id_tag = serializers.CharField(
        help_text="The OCPP idTag sent to the charger: the token's uid, or its short wire id when the uid is longer "
        "than 20 characters."
    )
    token_uid = serializers.CharField(help_text="The token's uid (OCPI), as in the session and its CDR.")
    reservation_id = serializers.IntegerField(allow_null=True)


class EmptySerializer(StrictSerializer):
    pass


class StationSearchSerializer(serializers.Serializer[Any]):
    """Where and what to search (query parameters): a point and/or a map view, a radius, and plug filters."""

    lat = serializers.FloatField(required=False, min_value=-90, max_value=90, help_text="Latitude (WGS 84).")
    lon = serializers.FloatField(required=False, min_value=-180, max_value=180, help_text="Longitude (WGS 84).")
    radius_km = serializers.FloatField(
        required=False, min_value=0, max_value=20_100, help_text="Only stations this close to the point (km)."
    )
    bbox = serializers.CharField(
        required=False,
        help_text="A map view `west,south,east,north` in degrees (WGS 84): only stations inside, nearest to the "
        "point first (to the view's centre without a point). west > east crosses the antimeridian.",
    )
    connector_type = serializers.ChoiceField(
        choices=Connector.Standard.choices, required=False, help_text="Only stations with a plug of this standard."
    )
    min_power_kw = serializers.FloatField(
        required=False, min_value=0, max_value=10_000, help_text="Only stations with a plug of at least this power."
    )
    available = serializers.BooleanField(
        required=False,
        help_text="true: only stations with an EVSE available now (matching the plug filters); false: only those "
        "without one.",
    )
    operator = serializers.CharField(
        required=False,
        max_length=100,
        help_text="`own`: our own network only; `partners`: every roaming partner's stations only; anything else: "
        "the partner stations of that operator (its name, the CPO's party `DE*ABC`, or the roaming partner's name). "
        "Omitted: ours and the partners', nearest first.",
    )

    def validate_bbox(self, value: str) -> BoundingBox:
        parts = value.split(",")
        try:
            west, south, east, north = (float(part) for part in parts)
        except ValueError:
            raise serializers.ValidationError("Four numbers: west,south,east,north.") from None
        if not all(math.isfinite(v) for v in (west, south, east, north)):
            raise serializers.ValidationError("Four numbers: west,south,east,north.")
        if not (-180 <= west <= 180 and -180 <= east <= 180):
            raise serializers.ValidationError("west and east are longitudes from -180 to 180.")
        if not (-90 <= south <= north <= 90):
            raise serializers.ValidationError("south and north are latitudes from -90 to 90, south <= north.")
        return BoundingBox(west=west, south=south, east=east, north=north)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("lat" in attrs) != ("lon" in attrs):
            missing = "lon" if "lat" in attrs else "lat"
            raise serializers.ValidationError({missing: ["Give both lat and lon, or neither."]})
        if "radius_km" in attrs and "lat" not in attrs:
            raise serializers.ValidationError({"radius_km": ["A radius needs a point: give lat and lon too."]})
        return attrs


class StationPriceSerializer(serializers.Serializer[Any]):
    excl_vat = serializers.CharField()
    incl_vat = serializers.CharField()


class StationPriceSummarySerializer(serializers.Serializer[Any]):
    """The tariff that would price the caller's session starting now, in short (decimal strings)."""

    tariff_id = serializers.CharField(help_text="OCPI Tariff.id")
    currency = serializers.CharField()
    per_kwh = StationPriceSerializer(allow_null=True)
    per_minute = StationPriceSerializer(allow_null=True, help_text="While charging (OCPI TIME).")
    parking_per_minute = StationPriceSerializer(
        allow_null=True, help_text="OCPI PARKING_TIME: idle time (the car connected, not drawing) after the grace."
    )
    parking_grace_minutes = serializers.IntegerField(help_text="Idle minutes of every idle stretch not billed.")
    per_session = StationPriceSerializer(allow_null=True, help_text="OCPI FLAT.")
    text = serializers.CharField(help_text="e.g. 0.4641 EUR/kWh + 0.5950 EUR per session incl. VAT")


class StationOperatorSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(help_text="Who operates the station.")
    party = serializers.CharField(help_text="OCPI party (`DE*ABC`), blank when unknown.")
    partner = serializers.IntegerField(allow_null=True, help_text="The roaming partner it came from; null: ours.")


class PartnerStationPriceSerializer(serializers.Serializer[Any]):
    """What our driver pays per unit on a partner's EVSE: the CPO's tariff through our retail rule, our VAT on top
    (decimal strings)."""

    tariff_id = serializers.CharField(allow_null=True, help_text="The CPO's OCPI Tariff.id (null: a fixed price).")
    currency = serializers.CharField()
    retail_mode = serializers.CharField(help_text="pass_through, markup or fixed_kwh.")
    vat_rate = serializers.CharField(help_text="Our VAT on the retail price, percent.")
    per_kwh = StationPriceSerializer(allow_null=True)
    per_hour = StationPriceSerializer(allow_null=True, help_text="While charging (OCPI TIME).")
    parking_per_hour = StationPriceSerializer(allow_null=True, help_text="OCPI PARKING_TIME.")
    per_session = StationPriceSerializer(allow_null=True, help_text="OCPI FLAT.")
    text = serializers.CharField()


class StationSummarySerializer(serializers.Serializer[Any]):
    evses = serializers.IntegerField(help_text="EVSEs a driver can use here.")
    available = serializers.IntegerField(help_text="Of those, available now.")
    connector_types = serializers.ListField(child=serializers.CharField())
    max_power_w = serializers.IntegerField(allow_null=True)


@extend_schema_field(
    PolymorphicProxySerializer(
        component_name="StationEvsePrice",
        serializers=[StationPriceSummarySerializer, PartnerStationPriceSerializer],
        resource_type_field_name=None,
    )
)
class StationEvsePriceField(serializers.JSONField):
    """Ours: the tariff that would price the caller's session; a partner's: the CPO's tariff through our retail
    rule."""


class StationEvseSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    evse_id = serializers.CharField(help_text="Ours: the EVSE id; a partner's: its eMI3 EVSE id, else its uid.")
    uid = serializers.CharField(required=False, help_text="A partner's EVSE uid (the key in its OCPI URLs).")
    status = serializers.CharField(help_text="Ours: OCPP status; a partner's: OCPI Status as the CPO last sent it.")
    connector_types = serializers.ListField(child=serializers.CharField())
    max_power_w = serializers.IntegerField(allow_null=True)
    price = StationEvsePriceField(
        allow_null=True,
        help_text="What prices the caller's session started now, exactly as it will be priced at its end. Null: "
        "no session here can be priced for the caller (no tariff applies, the contract price list is in "
        "another currency than the tariff, or a partner's tariff is unknown); such a session is marked not priced "
        "and is not billed.",
    )


class StationSerializer(serializers.Serializer[Any]):
    """A station of the driver search (`selectors.Station`), ours or a roaming partner's, with the price of each
    EVSE from the context (`prices` for ours, `partner_prices` for a partner's, by EVSE id). Written out by hand:
    DRF's fields cost ~1.7 ms a station under the profiler."""

    id = serializers.IntegerField()
    network = serializers.ChoiceField(
        choices=["own", "partner"], help_text="`own`: our network; `partner`: a roaming partner's."
    )
    operator = StationOperatorSerializer()
    tenant = serializers.IntegerField()
    name = serializers.CharField()
    address = serializers.CharField()
    city = serializers.CharField()
    country = serializers.CharField()
    latitude = serializers.DecimalField(max_digits=9, decimal_places=6)
    longitude = serializers.DecimalField(max_digits=9, decimal_places=6)
    distance_km = serializers.FloatField(allow_null=True)
    summary = StationSummarySerializer()
    evses = StationEvseSerializer(many=True)

    def to_representation(self, instance: Station) -> dict[str, Any]:
        own = instance.network == "own"
        prices = self.context.get("prices" if own else "partner_prices", {})
        evses = []
        for evse in instance.evses:
            row: dict[str, Any] = {"id": evse.id, "evse_id": evse.evse_id}
            if not own:
                row["uid"] = evse.uid
            row.update(
                status=evse.status,
                connector_types=list(evse.connector_types),
                max_power_w=evse.max_power_w,
                price=prices.get(evse.id),
            )
            evses.append(row)
        distance = instance.distance_km
        return {
            "id": instance.id,
            "network": instance.network,
            "operator": {
                "name": instance.operator_name,
                "party": instance.operator_party,
                "partner": instance.partner_id,
            },
            "tenant": instance.tenant_id,
            "name": instance.name,
            "address": instance.address,
            "city": instance.city,
            "country": instance.country,
            "latitude": f"{instance.latitude:.6f}",
            "longitude": f"{instance.longitude:.6f}",
            "distance_km": round(distance, 3) if distance is not None else None,
            "summary": instance.summary(),
            "evses": evses,
        }


class DriverTokenSerializer(StrictModelSerializer):
    class Meta:
        model = Token
        fields = [
            "id",
            "tenant",
            "uid",
            "wire_id",
            "type",
            "contract_id",
            "visual_number",
            "valid",
            "blocked",
            "expires_at",
            "driver",
        ]
        read_only_fields = fields


class DriverVehicleSerializer(StrictModelSerializer):
    class Meta:
        model = Vehicle
        fields = [
            "id",
            "tenant",
            "driver",
            "make",
            "model",
            "battery_kwh",
            "ac_phases",
            "ac_max_current_a",
            "dc_max_power_w",
            "connector_types",
            "licence_plate",
        ]
        read_only_fields = fields
