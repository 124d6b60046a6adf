from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from apps.energy.models import BuildingLoadReading, GridNode, GridSignal, NodeKind, TimeOfUseLimit
from tests.stations.factories import LocationFactory
from tests.tenants.factories import TenantFactory


class GridNodeFactory(DjangoModelFactory[GridNode]):
    """A root (site) node by default; pass parent/kind/charge_point for the rest of the tree."""

    class Meta:
        model = GridNode

    tenant = factory.SubFactory(TenantFactory)
    location = factory.SubFactory(LocationFactory, tenant=factory.SelfAttribute("..tenant"))
    name = factory.Sequence(lambda n: f"node {n}")
    kind = NodeKind.SITE
    max_current_a = 63


class TimeOfUseLimitFactory(DjangoModelFactory[TimeOfUseLimit]):
    class Meta:
        model = TimeOfUseLimit

    node = factory.SubFactory(GridNodeFactory)
    tenant = factory.SelfAttribute("node.tenant")
    label = "peak"
    weekdays = factory.LazyFunction(lambda: [0, 1, 2, 3, 4])
    start = dt.time(17, 0)
    end = dt.time(20, 0)
    percent = 60


class GridSignalFactory(DjangoModelFactory[GridSignal]):
    class Meta:
        model = GridSignal

    node = factory.SubFactory(GridNodeFactory)
    tenant = factory.SelfAttribute("node.tenant")
    max_power_w = 20_000
    valid_from = factory.LazyFunction(timezone.now)
    valid_until = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(hours=1))
    source = "DSO"


class BuildingLoadReadingFactory(DjangoModelFactory[BuildingLoadReading]):
    class Meta:
        model = BuildingLoadReading

    node = factory.SubFactory(GridNodeFactory)
    tenant = factory.SelfAttribute("node.tenant")
    at = factory.LazyFunction(timezone.now)
    power_w = 5_000
