"""One cursor over two networks: our own locations and partner locations (eMSP), nearest first, in one list.

Each network has its own query and spatial index (`selectors.stations_near`, `selectors.partner_stations_near`);
a page reads the ids and distances of at most `page_size + 1` rows of each, in each query's own order, merges them
by distance (ours first on a tie), and then loads only the page's rows with their EVSEs through each network's
loader (so the page costs what its own rows cost, not twice a page). The cursor says where the last page ended: the
last distance handed out (`geo_chord`, a float, exact through its repr) and, per network, how many rows at exactly
that distance were already handed out (those come first in that network's order, as with DRF's cursor offset).
Without a point: ours by id, then the partners' by id. Next links only (a driver scrolls on); a cursor this API did
not hand out is a 400.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.utils.urls import replace_query_param

OWN, PARTNER = 0, 1
CURSOR = "cursor"
# a network's rows by id (those that still exist), each with a `distance_km` the page sets (dataclasses.replace)
Loader = Callable[[Sequence[int]], Mapping[int, Any]]


@dataclass(frozen=True)
class Row:
    network: int
    obj: Any


@dataclass(frozen=True)
class _Key:
    chord: float
    network: int
    pk: int
    distance_km: float | None = None


def _bad() -> ValidationError:
    return ValidationError({"cursor": ["Invalid cursor."]})


def _decode(raw: str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.encode("ascii")).decode())
    except (ValueError, UnicodeError, binascii.Error):
        raise _bad() from None
    if not isinstance(data, dict):
        raise _bad()
    return data


def _encode(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()


def _int(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise _bad()
    return value


def _by_distance(querysets: dict[int, QuerySet[Any]]) -> bool:
    return any("geo_chord" in qs.query.annotations for qs in querysets.values())


def station_page(
    request: Request, querysets: dict[int, QuerySet[Any]], loaders: Mapping[int, Loader], *, page_size: int
) -> tuple[list[Row], str | None]:
    """The rows of this page (merged, in order; each network's `loaders` builds its rows) and the next page's URL
    (None on the last page)."""
    cursor = _decode(request.query_params.get(CURSOR))
    keys: list[_Key] = []
    if _by_distance(querysets):
        start: float | None = None
        offsets = {OWN: 0, PARTNER: 0}
        if cursor is not None:
            raw = cursor.get("d")
            if not isinstance(raw, (int, float)) or isinstance(raw, bool) or not math.isfinite(raw):
                raise _bad()
            start = float(raw)
            offsets = {OWN: _int(cursor.get("o")), PARTNER: _int(cursor.get("p"))}
        for network, qs in querysets.items():
            if start is not None:
                qs = qs.filter(geo_chord__gte=start)
            skip = offsets[network]
            found = _ids(qs, "pk", "geo_chord", "distance_km")[skip : skip + page_size + 1]
            keys += [_Key(float(chord), network, pk, km) for pk, chord, km in found]
        keys.sort(key=lambda key: (key.chord, key.network))  # stable: each network keeps its own order
        page, more = keys[:page_size], len(keys) > page_size
        if not more or not page:
            return _load(loaders, page), None
        last = page[-1].chord
        following = {}
        for network in (OWN, PARTNER):
            at_last = sum(1 for key in page if key.network == network and key.chord == last)
            following[network] = at_last + (offsets[network] if start is not None and last == start else 0)
        next_cursor = {"d": last, "o": following[OWN], "p": following[PARTNER]}
    else:
        after_network, after_id = OWN, 0
        if cursor is not None:
            after_network, after_id = _int(cursor.get("n")), _int(cursor.get("id"))
            if after_network not in (OWN, PARTNER):
                raise _bad()
        for network in sorted(querysets):
            if network < after_network:
                continue
            qs = querysets[network]
            if network == after_network:
                qs = qs.filter(pk__gt=after_id)
            keys += [_Key(0.0, network, pk) for (pk,) in _ids(qs, "pk")[: page_size + 1 - len(keys)]]
            if len(keys) > page_size:
                break
        page, more = keys[:page_size], len(keys) > page_size
        if not more or not page:
            return _load(loaders, page), None
        next_cursor = {"n": page[-1].network, "id": page[-1].pk}
    return _load(loaders, page), replace_query_param(request.build_absolute_uri(), CURSOR, _encode(next_cursor))


def _ids(queryset: QuerySet[Any], *fields: str) -> QuerySet[Any]:
    """The keys of a network's rows in its order, without loading them (nor their EVSEs)."""
    return queryset.prefetch_related(None).values_list(*fields)


def _load(loaders: Mapping[int, Loader], page: list[_Key]) -> list[Row]:
    """The page's rows, in the page's order, with their EVSEs and distances (one load per network)."""
    loaded: dict[tuple[int, int], Any] = {}
    for network, load in loaders.items():
        ids = [key.pk for key in page if key.network == network]
        if ids:
            loaded.update(((network, pk), obj) for pk, obj in load(ids).items())
    # a row deleted between the two reads is left off this page
    return [
        Row(key.network, replace(loaded[key.network, key.pk], distance_km=key.distance_km))
        for key in page
        if (key.network, key.pk) in loaded
    ]
