"""Charging API: sessions (operator view), CDRs, reservations, and the driver API for white-label apps.

Driver API scheme: a tenant API key with the `driver` scope (or staff) acts on behalf of the driver named
in the request (`driver` in the body of writes; `?driver=<id>` to filter reads). Everything stays scoped
to the caller's tenants: a driver, charge point or session of another tenant is 404.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import django_filters
from django.utils import timezone
from drf_orjson_renderer.renderers import ORJSONRenderer
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.api.pagination import DistanceCursorPagination
from apps.core.api.serializers import ErrorSerializer
from apps.core.errors import NotFound
from apps.customers import selectors as customer_selectors
from apps.customers.models import Driver
from apps.sessions import commands, completion, selectors, services
from apps.sessions.api import station_pages
from apps.sessions.api.serializers import (
    CdrSerializer,
    DriverTokenSerializer,
    DriverVehicleSerializer,
    EmptySerializer,
    RemoteStartSerializer,
    ReservationCreateSerializer,
    ReservationSerializer,
    SessionLiveSerializer,
    SessionPreferencesSerializer,
    SessionSerializer,
    SessionStartSerializer,
    StationSearchSerializer,
    StationSerializer,
)
from apps.sessions.cache import STATION_SEARCH_CACHE
from apps.sessions.models import Cdr, ChargingSession, Reservation
from apps.stations import selectors as station_selectors
from apps.tenants.access import scope_queryset
from apps.tenants.scoping import TenantScopedViewSet

ERRORS = {400: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer, 409: ErrorSerializer}
READ_ONLY = ["get", "head", "options"]
SEARCH = ("lat", "lon", "radius_km", "bbox", "connector_type", "min_power_kw", "available", "operator")


class SessionFilter(django_filters.FilterSet):
    driver = django_filters.NumberFilter(field_name="driver_id")
    charge_point = django_filters.NumberFilter(field_name="charge_point_id")
    business_customer = django_filters.NumberFilter(field_name="business_customer_id")

    class Meta:
        model = ChargingSession
        fields = ["status", "suspicious", "limit_reached"]


class SessionViewSet(TenantScopedViewSet):
    """Charging sessions (read-only): state, links, energy, limits, cost, data-quality flags."""

    queryset = selectors.session_list()
    serializer_class = SessionSerializer
    filterset_class = SessionFilter
    scope_area = "charging"
    http_method_names = READ_ONLY


class CdrFilter(django_filters.FilterSet):
    session = django_filters.NumberFilter(field_name="session_id")
    location = django_filters.NumberFilter(field_name="session__location_id")
    date_from = django_filters.IsoDateTimeFilter(
        field_name="start_date_time", lookup_expr="gte", help_text="Sessions that started at or after this time."
    )
    date_to = django_filters.IsoDateTimeFilter(
        field_name="start_date_time", lookup_expr="lt", help_text="Sessions that started before this time."
    )

    class Meta:
        model = Cdr
        fields = ["session", "location", "date_from", "date_to"]


class CdrViewSet(TenantScopedViewSet):
    """OCPI 2.2.1 CDRs of completed sessions (immutable); filter by session, location and start time."""

    queryset = selectors.cdr_list()
    serializer_class = CdrSerializer
    filterset_class = CdrFilter
    scope_area = "charging"
    http_method_names = READ_ONLY


class ReservationFilter(django_filters.FilterSet):
    driver = django_filters.NumberFilter(field_name="driver_id")

    class Meta:
        model = Reservation
        fields = ["status", "charge_point"]


class ReservationViewSet(TenantScopedViewSet):
    """Reservations: POST reserves (ReserveNow is sent; 409 when taken or refused), `cancel` cancels."""

    queryset = selectors.reservation_list()
    serializer_class = ReservationCreateSerializer
    filterset_class = ReservationFilter
    scope_area = "driver"
    write_roles = ("admin", "operations")
    http_method_names = ["get", "post", "head", "options"]

    def get_serializer_class(self) -> Any:
        return (
            ReservationSerializer if (self.request.method or "").lower() in READ_ONLY else ReservationCreateSerializer
        )

    @extend_schema(request=ReservationCreateSerializer, responses={201: ReservationSerializer, **ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = _valid(ReservationCreateSerializer, request, self.get_serializer_context())
        driver = data["driver"]
        if not self.access.can_write(driver.tenant_id, self.write_roles):
            raise serializers.ValidationError({"driver": ["You cannot act for this driver."]})
        reservation = commands.reservation_create(
            tenant=driver.tenant,
            driver=driver,
            charge_point=data["charge_point"],
            connector_id=data["connector_id"],
            expires_at=data["expires_at"],
            vehicle=data.get("vehicle"),
            token_uid=data.get("token_uid"),
        )
        reservation = commands.reservation_send(reservation=reservation)
        return Response(ReservationSerializer(reservation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=EmptySerializer, responses={200: ReservationSerializer, **ERRORS})
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        _valid(EmptySerializer, request, {})
        reservation = commands.reservation_cancel(reservation=self.get_object())
        return Response(ReservationSerializer(reservation).data)


def _valid(cls: Any, request: Request, context: dict[str, Any]) -> dict[str, Any]:
    serializer = cls(data=request.data, context=context)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class DriverSessionViewSet(TenantScopedViewSet):
    """Driver app: POST starts charging (RemoteStartTransaction; by charge point or QR payload), GET lists the
    history (`?driver=`), a detail is the live view (energy, power, duration, cost so far), `stop` stops."""

    queryset = selectors.session_list().prefetch_related("events")
    serializer_class = SessionStartSerializer
    filterset_class = SessionFilter
    scope_area = "driver"
    write_roles = ("admin", "operations")
    http_method_names = ["get", "post", "head", "options"]

    def get_serializer_class(self) -> Any:
        if (self.request.method or "").lower() in READ_ONLY:
            return SessionLiveSerializer if self.action == "retrieve" else SessionSerializer
        return SessionStartSerializer

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        session = self.get_object()
        now = timezone.now()
        session.duration_s = int(((session.stopped_at or now) - session.started_at).total_seconds())  # type: ignore[attr-defined]
        session.cost_so_far = completion.live_cost(session, now=now)  # type: ignore[attr-defined]
        return Response(SessionLiveSerializer(session).data)

    @extend_schema(request=SessionStartSerializer, responses={202: RemoteStartSerializer, **ERRORS})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = _valid(SessionStartSerializer, request, self.get_serializer_context())
        driver = data["driver"]
        if not self.access.can_write(driver.tenant_id, self.write_roles):
            raise serializers.ValidationError({"driver": ["You cannot act for this driver."]})
        started = commands.session_remote_start(
            tenant=driver.tenant,
            driver=driver,
            charge_point=data.get("charge_point"),
            connector_id=data.get("connector_id"),
            qr=data.get("qr", ""),
            token_uid=data.get("token_uid"),
            reservation_id=data.get("reservation"),
            departure_at=data.get("departure_at"),
            energy_need_wh=data.get("energy_need_wh"),
        )
        return Response(RemoteStartSerializer(started).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=SessionPreferencesSerializer, responses={200: SessionSerializer, **ERRORS})
    @action(detail=True, methods=["post"], serializer_class=SessionPreferencesSerializer)
    def preferences(self, request: Request, pk: str | None = None) -> Response:
        """Departure time and/or energy need of a running session (OCPI ChargingPreferences); smart charging
        recomputes the site. 400 for a departure not in the future or a need of 0, 409 once it is finishing."""
        session = self.get_object()
        data = _valid(SessionPreferencesSerializer, request, {})
        session = services.session_preferences_set(
            session=session,
            departure_at=data.get("departure_at", services.KEEP),
            energy_need_wh=data.get("energy_need_wh", services.KEEP),
        )
        return Response(SessionSerializer(session).data)

    @extend_schema(request=EmptySerializer, responses={200: SessionSerializer, **ERRORS})
    @action(detail=True, methods=["post"], serializer_class=EmptySerializer)
    def stop(self, request: Request, pk: str | None = None) -> Response:
        _valid(EmptySerializer, request, {})
        session = commands.session_remote_stop(session=self.get_object())
        return Response(SessionSerializer(session).data)


STATION_LOADERS = {station_pages.OWN: selectors.station_rows, station_pages.PARTNER: selectors.partner_station_rows}


class DriverStationViewSet(TenantScopedViewSet):
    """Stations near a point (`?lat=&lon=&radius_km=`) or in a map view (`?bbox=west,south,east,north`), nearest
    first (great-circle distance, from a spatial index), with availability, plugs and power; filtered by plug
    standard (`connector_type`), power (`min_power_kw`), availability (`available`) and operator (`operator`).
    Our own stations (`network` "own") and our roaming partners' (`network` "partner", eMSP: their live OCPI
    status, their operator, and the price our driver pays there: the CPO's tariff through our retail rule) in one
    list, one cursor (`station_pages.py`)."""

    queryset = station_selectors.location_list()
    serializer_class = StationSerializer
    scope_area = "driver"
    http_method_names = READ_ONLY
    pagination_class = DistanceCursorPagination
    extra_query_params = (*SEARCH, "driver")
    # A page of 50 stations with their EVSEs and prices is ~70 KB of JSON: DRF's renderer (json.dumps) wrote it in
    # 1.6 ms, a sixth of a cache hit; orjson in 0.14 ms (benchmarks/partner_search_bench.py database, 2026-12-06).
    renderer_classes = [ORJSONRenderer]

    def _search(self) -> dict[str, Any]:
        query = StationSearchSerializer(data={k: v for k, v in self.request.query_params.items() if k in SEARCH})
        query.is_valid(raise_exception=True)
        point = dict(query.validated_data)
        return {
            "lat": Decimal(repr(point["lat"])) if "lat" in point else None,
            "lon": Decimal(repr(point["lon"])) if "lon" in point else None,
            "radius_km": point.get("radius_km"),
            "bbox": point.get("bbox"),
            "connector_type": point.get("connector_type"),
            "min_power_w": round(point["min_power_kw"] * 1000) if "min_power_kw" in point else None,
            "available": point.get("available"),
            "operator": point.get("operator"),
        }

    def get_queryset(self) -> Any:
        return self._own_queryset(super().get_queryset(), self._search())

    @staticmethod
    def _own_queryset(queryset: Any, search: dict[str, Any]) -> Any:
        return selectors.stations_near(queryset, **{k: v for k, v in search.items() if k != "operator"})

    def _partner_queryset(self, search: dict[str, Any]) -> Any:
        operator = search.pop("operator")
        return selectors.partner_stations_near(
            scope_queryset(station_selectors.partner_location_list(), self.access),
            operator=None if operator == selectors.PARTNER_NETWORKS else operator,
            **search,
        )

    def _stations(self, stations: list[selectors.Station], driver: Driver | None) -> list[dict[str, Any]]:
        """The stations written out with the price of each EVSE for `driver` (ad hoc without)."""
        at = timezone.now()
        own = [s for s in stations if s.network == selectors.OWN_NETWORK]
        partners = [s for s in stations if s.network != selectors.OWN_NETWORK]
        context = {
            **self.get_serializer_context(),
            "prices": selectors.station_prices(own, driver=driver, at=at) if own else {},
            "partner_prices": selectors.partner_station_prices(partners, at=at) if partners else {},
        }
        rows = StationSerializer(context=context)  # one for the page: it writes each station out by hand
        return [rows.to_representation(station) for station in stations]

    def _driver(self) -> Driver | None:
        raw = self.request.query_params.get("driver")
        if raw in (None, ""):
            return None
        if not raw.isdigit():
            raise serializers.ValidationError({"driver": ["A driver id."]})
        driver = scope_queryset(Driver.objects.all(), self.access).filter(pk=int(raw)).first()
        if driver is None:
            raise NotFound("No such driver.", code="driver_not_found")
        return driver

    @extend_schema(
        parameters=[
            StationSearchSerializer,
            OpenApiParameter(
                "driver", int, required=False, description="Price for this driver (contract); none: ad hoc price."
            ),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The page is cached per tenant scope, query and pricing party (`STATION_SEARCH_CACHE`); the query, the
        driver and the caller's access are checked on every request, hit or miss."""
        driver = self._driver()
        search = self._search()
        scoped = self.filter_queryset(super().get_queryset())  # an unknown query parameter is a 400, hit or miss
        page_size = DistanceCursorPagination().get_page_size(request)  # validated: 1 to the maximum, a 400 else

        def compute() -> Any:  # the querysets are built on a miss only (their build cost ~3 ms of a hit's ~12)
            querysets: dict[int, Any] = {}
            if search["operator"] in (None, selectors.OWN_NETWORK):
                querysets[station_pages.OWN] = self._own_queryset(scoped, search)
            if search["operator"] != selectors.OWN_NETWORK:
                querysets[station_pages.PARTNER] = self._partner_queryset(dict(search))
            rows, next_url = station_pages.station_page(request, querysets, STATION_LOADERS, page_size=page_size)
            return {"next": next_url, "previous": None, "results": self._stations([row.obj for row in rows], driver)}

        tenant_ids = self.access.tenant_ids
        if tenant_ids is None or not STATION_SEARCH_CACHE.enabled:  # a platform superuser: every tenant, uncached
            return Response(compute())
        parts = (
            request.build_absolute_uri(request.path),  # the pagination links carry scheme, host and path
            sorted((k, v) for k, v in request.query_params.items() if k != "driver"),
            selectors.driver_pricing_party(driver),  # the price depends on who pays, not on the driver's id
        )
        return Response(STATION_SEARCH_CACHE.get(tenant_ids=tenant_ids, parts=parts, compute=compute))


class DriverFilter(django_filters.FilterSet):
    driver = django_filters.NumberFilter(field_name="driver_id")


class DriverTokenViewSet(TenantScopedViewSet):
    """A driver's tokens (`?driver=`)."""

    queryset = customer_selectors.token_list()
    serializer_class = DriverTokenSerializer
    filterset_class = DriverFilter
    scope_area = "driver"
    http_method_names = READ_ONLY


class DriverVehicleViewSet(TenantScopedViewSet):
    """A driver's vehicles (`?driver=`)."""

    queryset = customer_selectors.vehicle_list()
    serializer_class = DriverVehicleSerializer
    filterset_class = DriverFilter
    scope_area = "driver"
    http_method_names = READ_ONLY
