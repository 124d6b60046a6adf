from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api.serializers import ErrorSerializer
from apps.core.errors import NotFound
from apps.search import selectors
from apps.search.api.serializers import SearchQuerySerializer, SearchResultsSerializer
from apps.search.kinds import BY_NAME, KINDS
from apps.tenants.access import Access, access_for


def visible_kinds(access: Access) -> list[str]:
    """The kinds a caller may find: staff users every kind; an API key those whose area it may read."""
    if access.api_key is None:
        return [kind.name for kind in KINDS]
    return [kind.name for kind in KINDS if access.api_key.allows(kind.area, write=False)]


class SearchView(APIView):
    """One search box over charge points, locations, EVSEs, tokens, drivers, business customers, charging
    sessions and invoices of your tenants.

    Ranked: an exact identifier first, then identifiers starting with the query, then objects whose names,
    addresses or e-mails contain the query's words (word beginnings), then similar names (typos). Accents and
    case are ignored. Results are grouped by kind (best group first), at most `limit` per kind (`has_more` says
    there are more: ask again with `kind`). An API key finds only the kinds its other read scopes reach
    (`stations`, `tokens`, `customers`, `charging`, `billing`)."""

    scope_area = "search"

    @extend_schema(
        summary="Search everything",
        parameters=[SearchQuerySerializer],
        responses={200: SearchResultsSerializer, 400: ErrorSerializer, 404: ErrorSerializer},
        examples=[
            OpenApiExample(
                "Empty query",
                value={
                    "code": "validation_error",
                    "message": "q: This field may not be blank.",
                    "fields": {"q": ["This field may not be blank."]},
                },
                response_only=True,
                status_codes=["400"],
            )
        ],
    )
    def get(self, request: Request) -> Response:
        data = SearchQuerySerializer(data=request.query_params.dict())
        data.is_valid(raise_exception=True)
        query: dict[str, Any] = dict(data.validated_data)
        access = access_for(request)
        tenant_ids = access.tenant_ids
        wanted = query.get("tenant")
        if wanted is not None:
            if tenant_ids is not None and wanted not in tenant_ids:
                raise NotFound("No such tenant.")
            tenant_ids = {wanted}
        kinds = visible_kinds(access)
        if "kind" in query:
            kinds = [name for name in kinds if name == query["kind"]]
        results = selectors.search(query=query["q"], tenant_ids=tenant_ids, kinds=kinds, limit=query["limit"])
        body = {
            "query": results.query,
            "groups": [
                {
                    "kind": group.kind,
                    "label": group.label,
                    "has_more": group.has_more,
                    "results": [
                        {
                            "id": hit.id,
                            "tenant_id": hit.tenant_id,
                            "title": hit.title,
                            "subtitle": hit.subtitle,
                            "match": hit.match,
                            "score": round(hit.score, 4),
                            "highlight": {
                                "title": results.highlight(hit.title),
                                "subtitle": results.highlight(hit.subtitle),
                            },
                            "url": reverse(BY_NAME[hit.kind].api_view, kwargs={"pk": hit.id}),
                        }
                        for hit in group.hits
                    ],
                }
                for group in results.groups
            ],
        }
        return Response(SearchResultsSerializer(body).data)
