from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.api.serializers import StrictSerializer
from apps.search.kinds import KINDS
from apps.search.selectors import DEFAULT_LIMIT, MAX_LIMIT, MAX_QUERY_LENGTH


class SearchQuerySerializer(StrictSerializer):
    q = serializers.CharField(
        max_length=MAX_QUERY_LENGTH,
        help_text=(
            "What to look for: an identifier (charge point identity or serial, EVSE id, token uid, visual number or "
            "contract id, e-mail, invoice number, session / transaction id, CDR id, customer number), its beginning, "
            "or words of a name or address (accents and case ignored, typos tolerated)."
        ),
    )
    kind = serializers.ChoiceField(
        choices=[kind.name for kind in KINDS], required=False, help_text="Search only this kind of object."
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT, help_text="Results per kind."
    )
    tenant = serializers.IntegerField(required=False, help_text="Limit to one of your tenants.")


class HighlightSerializer(serializers.Serializer[Any]):
    title = serializers.CharField(help_text="The title as HTML, the matching parts in <mark>.")
    subtitle = serializers.CharField(help_text="The subtitle as HTML, the matching parts in <mark>.")


class SearchHitSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    tenant = serializers.IntegerField(source="tenant_id")
    title = serializers.CharField()
    subtitle = serializers.CharField()
    match = serializers.ChoiceField(
        choices=["exact", "prefix", "text", "fuzzy"],
        help_text="exact identifier, identifier prefix, words of names/addresses, or a similar name (typo).",
    )
    score = serializers.FloatField(help_text="Relevance: higher is better; the integer part is the match tier.")
    highlight = HighlightSerializer()
    url = serializers.CharField(help_text="The object in this API.")


class SearchGroupSerializer(serializers.Serializer[Any]):
    kind = serializers.ChoiceField(choices=[kind.name for kind in KINDS])
    label = serializers.CharField()  # type: ignore[assignment]
    has_more = serializers.BooleanField(help_text="More results of this kind: ask again with `kind` and a `limit`.")
    results = SearchHitSerializer(many=True)


class SearchResultsSerializer(serializers.Serializer[Any]):
    query = serializers.CharField(help_text="The query as searched (whitespace collapsed).")
    groups = SearchGroupSerializer(many=True, help_text="One group per kind with results, best group first.")
