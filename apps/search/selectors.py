"""The search: one query string against every kind of `kinds.KINDS`, ranked, grouped by kind, tenant-scoped.

Ranking, per result (`score`; the integer part is the tier, so a better tier always wins):

- 4 `exact`: an identifier equals the query (accent- and case-blind), or the number is the object's id where
  people quote it (a session's transaction id, a driver's or business customer's customer number);
- 3 `prefix`: an identifier starts with the query (+ the share of the identifier the query covers);
- 2 `text`: every word of the query starts a word of the object's names, addresses, e-mails (+ `ts_rank`, names
  weigh more than addresses); or, stemmed in the language of the object's tenant (`Tenant.language`, Snowball
  English, German or French: `charging` → `charg`, `Ladestationen` → `ladestation`), every stem starts a stem of
  its location name or address (`kinds.Kind.stemmed`, migrations/0005_search_languages.py: never people's names),
  at half the rank of a literal match;
- 1 `fuzzy`: the query is like a word of the object's names (pg_trgm word similarity, + that similarity). The rows
  are first looked for through the words table (`migrations/0004_search_words.py`, pg_trgm's documented way to
  correct spelling over full text): each query word's nearest look-alike words (its small trigram index), then the
  rows holding a look-alike of every query word (the full-text GIN index, exact lexemes: short posting lists),
  filtered and ranked by the same word similarity. Only when no row has them does the trigram index of the names
  themselves answer (as the tier did before: every row like the query, at its GIN index's cost).

Sequential scans are off for the search's transaction: the planner prices pg_trgm's and full text's per-row
tests as cheap and, with a row estimate of a few hundred, would read a table of 200k drivers in full to find none
(measured: 50 ms per tier at a tenth of the benchmark's size); every tier has an index (tests/search/test_indexes.py).
Every tier is its own index scan with its own LIMIT (an identifier prefix reads the btree in order and stops; the
text and fuzzy tiers rank at most `CANDIDATES` matches; a kind with more look-alikes is asked again with a stricter
threshold, so the best are never among those left out), every kind in one SQL statement, prepared once per
connection with a generic plan (`_prepared_cursor`). The tiers run in stages, a slower one only when the better ones
found nothing (an identifier's words, typos after words matched: see `search`). Results never leave the tenants
given: callers pass `Access.tenant_ids` (None only for platform superusers).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, transaction

from apps.core.prepared import prepared_cursor
from apps.core.replica import replica_alias
from apps.search.highlight import mark
from apps.search.kinds import BY_NAME, KINDS, STEMMING, Kind, stemmed_document

MAX_QUERY_LENGTH = 200
DEFAULT_LIMIT = 5
MAX_LIMIT = 50  # per kind, for the API and the admin page
MAX_IDS = 1000  # per kind, for the admin changelists
CANDIDATES = 1000  # rows ranked at most per kind in the text and fuzzy tiers
WORD_SIMILARITY = 0.4  # pg_trgm.word_similarity_threshold for the fuzzy tier (default 0.6 misses one-letter typos)
# stricter thresholds the fuzzy tier asks again with, for the kinds whose look-alikes were more than CANDIDATES: one
# more ask at most, each reads the same posting lists again (measured under load 5 on the search benchmark, misspelt
# names p50/p95: 508/604 ms without, 546/621 ms with one ask at 0.7, 472-512/896-919 ms with two at 0.6 and 0.8)
STRICTER = (0.7,)
WORD_ALIKE = 0.3  # pg_trgm.similarity_threshold: a query word's look-alikes in the words table (pg_trgm's default)
ALIKE_WORDS = 20  # look-alikes per query word, nearest first
MIN_PREFIX = 2
MIN_FUZZY = 3
INT8_MAX = 2**63 - 1

MATCHES = {4: "exact", 3: "prefix", 2: "text", 1: "fuzzy"}


@dataclass(frozen=True)
class SearchHit:
    kind: str
    id: int
    tenant_id: int
    score: float
    title: str
    subtitle: str

    @property
    def match(self) -> str:
        return MATCHES.get(int(self.score), "fuzzy")


@dataclass(frozen=True)
class SearchGroup:
    kind: str
    label: str
    hits: list[SearchHit]
    has_more: bool

    @property
    def best(self) -> float:
        return self.hits[0].score if self.hits else 0.0


@dataclass(frozen=True)
class SearchResults:
    query: str
    groups: list[SearchGroup] = field(default_factory=list)

    @property
    def hits(self) -> list[SearchHit]:
        """Every hit, best first (the order of the groups, then within each)."""
        return sorted((hit for group in self.groups for hit in group.hits), key=lambda h: -h.score)

    def highlight(self, text: str) -> str:
        return mark(text, self.query)


def normalize_query(query: str) -> str:
    return " ".join(query.split())


def _tenant_condition(tenant_ids: frozenset[int] | None) -> str:
    # `+ 0`: never let the planner walk a tenant's rows through its tenant_id index and test each one (it would
    # with a LIMIT and a few hundred rows expected); the search indexes find the rows, the tenant filters them
    return "TRUE" if tenant_ids is None else "t.tenant_id + 0 = ANY(%(tenants)s::bigint[])"


def _kind_sql(
    kind: Kind,
    *,
    tenants: str,
    prefix: bool,
    text: bool,
    fuzzy: bool,
    number: bool,
    words: bool = False,
    stems: Collection[str] = (),
) -> str:
    """One kind's hits as (kind, id, tenant_id, score, title, subtitle), best first, at most %(n)s.

    The subtitles read their parent rows (location, charge point, driver) through scalar subqueries, not joins: with
    a join, some statistics made the generic plan read the whole searched table along its foreign-key index to
    merge-join the parent (seen in CI: a full Index Scan on customers_token_driver_id); a subquery can only look up
    the at most %(n)s parents by primary key."""
    table = kind.table
    exact = [f'search_norm(t.{c}) COLLATE "C" = %(nq)s::text' for c in kind.identifiers]
    if kind.numeric_id and number:
        exact.append("t.id = %(number)s::bigint")
    tiers = [
        f"(SELECT t.id, 4.0::float8 AS score, false AS truncated FROM {table} t WHERE {tenants}"
        f" AND ({' OR '.join(exact)}) LIMIT %(n)s::int)"
    ]
    if prefix:
        for c in kind.identifiers:
            key = f'search_norm(t.{c}) COLLATE "C"'
            # a range, not LIKE: a generic plan (below) can put a range of parameters on the btree, not a pattern
            tiers.append(
                f"(SELECT t.id, 3 + length(%(nq)s::text)::float8 / greatest(length({key}), 1) AS score,"
                f" false AS truncated FROM {table} t"
                f" WHERE {tenants} AND {key} >= %(nq)s::text AND {key} < %(upper)s::text ORDER BY {key}"
                " LIMIT %(n)s::int)"
            )
    if kind.text and text:
        tiers.append(
            "(SELECT s.id, 2 + ts_rank(s.search_document, to_tsquery('search_simple', %(tsq)s::text), 32) AS score,"
            f" false AS truncated FROM (SELECT t.id, t.search_document FROM {table} t WHERE {tenants}"
            " AND t.search_document @@ to_tsquery('search_simple', %(tsq)s::text) LIMIT %(candidates)s::int) s"
            " ORDER BY score DESC LIMIT %(n)s::int)"
        )
    for language in stems if kind.stemmed and text else ():
        # the query's words stemmed in the language of the tenants that have it (`%(stems_<language>)s`, prefixes as
        # above) on that language's expression index of the kind's stemmed fields. Ranked on the stored
        # `search_document` by the same stems as prefixes (a stem is mostly the start of its words: `charg` of
        # charger), at half the weight of a literal match: recomputing the stemmed document of each of the
        # CANDIDATES rows to rank it cost 8-11 ms per kind and 1,000 rows on the benchmark's data
        document = stemmed_document(kind, language)
        tiers.append(
            f"(SELECT s.id, 2 + ts_rank(s.search_document, %(stems_{language})s::tsquery, 32) / 2 AS score,"
            f" false AS truncated FROM (SELECT t.id, t.search_document FROM {table} t"
            f" WHERE t.tenant_id + 0 = ANY(%(tenants_{language})s::bigint[])"
            f" AND {document} @@ %(stems_{language})s::tsquery LIMIT %(candidates)s::int) s"
            " ORDER BY score DESC LIMIT %(n)s::int)"
        )
    if kind.text and words:
        # the rows with a look-alike of every query word (`%(alike)s`, exact lexemes of the words table: short posting
        # lists), ranked and filtered as the trigram tier below does, so they are the same hits with the same scores
        tiers.append(
            "(SELECT s.id, 1 + s.similarity AS score, count(*) OVER () > %(candidates)s::int AS truncated"
            f" FROM (SELECT t.id, word_similarity(%(nq)s::text, t.search_names) AS similarity FROM {table} t"
            f" WHERE {tenants} AND t.search_document @@ %(alike)s::tsquery"
            " AND word_similarity(%(nq)s::text, t.search_names) >= %(similarity)s::float8"
            " LIMIT %(candidates)s::int + 1) s ORDER BY score DESC LIMIT %(n)s::int)"
        )
    if kind.text and fuzzy:
        # one row more than are ranked: when it comes, the look-alikes were cut (`search` then asks again, stricter)
        tiers.append(
            "(SELECT s.id, 1 + word_similarity(%(nq)s::text, s.search_names) AS score,"
            " count(*) OVER () > %(candidates)s::int AS truncated"
            f" FROM (SELECT t.id, t.search_names FROM {table} t WHERE {tenants}"
            " AND %(nq)s::text <%% t.search_names LIMIT %(candidates)s::int + 1) s"
            " ORDER BY score DESC LIMIT %(n)s::int)"
        )
    return (
        f"(SELECT '{kind.name}' AS kind, t.id, t.tenant_id, m.score, {kind.title} AS title,"
        f" {kind.subtitle} AS subtitle, m.truncated"
        f" FROM (SELECT id, max(score) AS score, bool_or(truncated) AS truncated FROM ({' UNION ALL '.join(tiers)}) u"
        f" GROUP BY id ORDER BY score DESC, id LIMIT %(n)s::int) m"
        # each hit's own row by its id: a lateral lookup the planner cannot flatten into a join (LIMIT 1), so it is
        # read by primary key once per hit whatever the table's statistics say (a plain join was planned as a full
        # read of a table whose statistics, after a bulk delete, said it was empty)
        f" CROSS JOIN LATERAL (SELECT * FROM {table} t WHERE t.id = m.id LIMIT 1) t)"
    )


def _prefix_upper(value: str) -> str:
    """The least string above every string that starts with `value`, in code point order (COLLATE "C" on UTF-8):
    its last character that can grow, grown by one; `value` + the highest code point twice if none can."""
    chars = value.rstrip(chr(0x10FFFF))
    if not chars:
        return value + chr(0x10FFFF) * 2
    following = ord(chars[-1]) + 1
    return chars[:-1] + chr(0xE000 if 0xD800 <= following <= 0xDFFF else following)  # no surrogates in UTF-8


def _tsquery(lexemes: Iterable[str]) -> str:
    """AND of prefix terms, from the lexemes PostgreSQL's own parser found in the query."""
    safe = [lexeme for lexeme in lexemes if lexeme and "'" not in lexeme and "\\" not in lexeme]
    return " & ".join(f"'{lexeme}':*" for lexeme in safe)


def _alike_tsquery(alikes: Iterable[tuple[str, list[str] | None]]) -> str:
    """`(a | a2 | a3) & (b | b2)`: per query word, the word itself or one of its look-alikes, as exact lexemes."""
    terms = []
    for word, alike in alikes:
        options = [w for w in dict.fromkeys([word, *(alike or [])]) if w and "'" not in w and "\\" not in w]
        if options:
            terms.append("(" + " | ".join(f"'{w}'" for w in options) + ")")
    return " & ".join(terms)


def _words_sql(tenants: str) -> str:
    """Per query word (`%(words)s`, in order), its nearest look-alikes in the tenants' words (`search_word`, its
    trigram GIN index; `pg_trgm.similarity_threshold` = `WORD_ALIKE`), at most `%(alike_words)s`, best first. Words
    with digits are not looked up (the table has none: identifiers and numbers are taken as they are)."""
    return (
        "SELECT q.word, CASE WHEN q.word !~ '[0-9]' THEN ARRAY(SELECT t.word FROM search_word t"
        f" WHERE {tenants} AND t.word %% q.word GROUP BY t.word"
        " ORDER BY similarity(t.word, q.word) DESC, t.word LIMIT %(alike_words)s::int) END"
        " FROM unnest(%(words)s::text[]) WITH ORDINALITY q(word, i) ORDER BY q.i"
    )


def _prepared_cursor(django_cursor: Any) -> Any:
    """A server-side-binding cursor with prepared statements on (`core.prepared`): with `prepare=True` each shape of
    the search's statement is planned once per connection and kept, and `plan_cache_mode = force_generic_plan`
    makes PostgreSQL reuse that one plan whatever the parameters. Planning the statement (~30 index scans in one
    UNION ALL) was most of a search's time: 8-16 ms of `EXPLAIN (ANALYZE, SUMMARY)` for 1-2 ms of execution on the
    benchmark's data. Every condition is one a generic plan can put on an index: `=` and a range of parameters on
    the btrees, `@@` and `<%` on the GIN indexes (tests/search/test_indexes.py)."""
    return prepared_cursor(django_cursor)


def search(
    *,
    query: str,
    tenant_ids: Collection[int] | None,
    kinds: Iterable[str] | None = None,
    limit: int = DEFAULT_LIMIT,
) -> SearchResults:
    """Hits for `query` in the given tenants (None: every tenant, platform superusers only), at most `limit` per
    kind, groups ordered by their best hit. `kinds` restricts the kinds searched (names of `kinds.KINDS`)."""
    query = normalize_query(query)
    if not query:
        return SearchResults(query=query)
    wanted = [BY_NAME[name] for name in kinds] if kinds is not None else list(KINDS)
    tenants = None if tenant_ids is None else frozenset(tenant_ids)
    if not wanted or tenants == frozenset():
        return SearchResults(query=query)
    limit = max(1, min(limit, MAX_IDS))
    db = connections[replica_alias()]  # the read replica when configured
    nested = db.in_atomic_block  # then the settings below would outlive the search: put them back
    tenant_list = sorted(tenants) if tenants is not None else None
    with transaction.atomic(using=db.alias), db.cursor() as django_cursor:
        cursor = _prepared_cursor(django_cursor)
        cursor.execute(
            "SELECT current_setting('pg_trgm.word_similarity_threshold', true), current_setting('enable_seqscan'),"
            " current_setting('plan_cache_mode'), current_setting('pg_trgm.similarity_threshold', true),"
            " set_config('pg_trgm.word_similarity_threshold', %s::text, true),"
            " set_config('pg_trgm.similarity_threshold', %s::text, true),"
            " set_config('enable_seqscan', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true),"
            " search_norm(%s::text), ARRAY(SELECT lexeme FROM unnest(to_tsvector('search_simple', %s::text))),"
            # the query's words stemmed in each language, and the tenants searched by their language
            + "".join(
                f" ARRAY(SELECT lexeme FROM unnest(to_tsvector('search_{language}', %s::text))),"
                for language in STEMMING
            )
            + " (SELECT json_object_agg(l.language, l.ids) FROM (SELECT language, array_agg(id ORDER BY id) AS ids"
            " FROM tenants_tenant WHERE %s::bigint[] IS NULL OR id = ANY(%s::bigint[]) GROUP BY language) l)",
            [str(WORD_SIMILARITY), str(WORD_ALIKE), query, query, *[query] * len(STEMMING), tenant_list, tenant_list],
            prepare=True,
        )
        threshold, seqscan, plan_cache_mode, alike_threshold, _, _, _, _, normalized, lexemes, *stemmed = (
            cursor.fetchone()
        )
        languages: dict[str, list[int]] = stemmed.pop() or {}
        tsq = _tsquery(lexemes)
        # a language's stemmed tier runs for the tenants of that language, when its stemmer left a word of the query
        # (stop words are dropped: "am" in German)
        stems = {
            language: _tsquery(words)
            for language, words in zip(STEMMING, stemmed, strict=True)
            if languages.get(language) and _tsquery(words)
        }
        number = int(query) if query.isascii() and query.isdigit() and 0 < int(query) <= INT8_MAX else None
        params: dict[str, Any] = {
            "nq": normalized,
            "upper": _prefix_upper(normalized),
            "tsq": tsq,
            "number": number,
            "tenants": tenant_list,
            "n": limit + 1,
            "candidates": CANDIDATES,
            "similarity": WORD_SIMILARITY,
            "words": lexemes,
            "alike_words": ALIKE_WORDS,
            "alike": "",
        }
        for language, stem_query in stems.items():
            params[f"stems_{language}"] = stem_query
            params[f"tenants_{language}"] = languages[language]
        # identifiers have no spaces (a query with spaces is words: no identifier prefix to look for), and a
        # spaceless query with digits is an identifier, not a misspelt name (no typo tier: it would find every
        # charger sharing "CP-0" trigrams)
        spaced = " " in normalized
        digits = any(char.isdigit() for char in normalized)

        def statement(*, text: bool, fuzzy: bool, words: bool = False, only: Collection[str] | None = None) -> str:
            return " UNION ALL ".join(
                _kind_sql(
                    kind,
                    tenants=_tenant_condition(tenants),
                    prefix=len(normalized) >= MIN_PREFIX and not spaced,
                    text=text,
                    fuzzy=fuzzy,
                    number=number is not None,
                    words=words,
                    stems=stems,
                )
                for kind in wanted
                if only is None or kind.name in only
            )

        # Tiers in stages, each only when the ones before found nothing at all (in any kind): a better tier's hit
        # always ranks above a worse tier's, and the worse tiers are the slow ones (EXPLAIN ANALYZE on the
        # benchmark's data). 1. An identifier (no spaces, digits): exact and prefix on the btrees (~1 ms); its
        # words would cost 29-68 ms of GIN reads (`DE*BCH*E036733*1` is 'de':* & 'bch':* & 'e036733':* & '1':*,
        # every posting list of every word starting with "1" or "de") to find nothing the identifier missed.
        # 2. Words (full text). 3. Typos, only when no word matched, as a misspelt name does: first the rows with a
        # look-alike of every query word (`_words_sql`, `_alike_tsquery`), then, if there are none, the trigram index
        # of the names (15-60 ms per table to rank up to CANDIDATES look-alikes). On the benchmark's data (220k
        # drivers, search_bench.py --reuse --queries 10 --repeat 5, same database and load) misspelt names took
        # p50/p95 14.7/23.1 ms this way, 56.3/68.6 ms through the trigram index. The look-alike words miss a row
        # only when one of its words is none of a query word's ALIKE_WORDS nearest (similarity >= WORD_ALIKE, e.g.
        # a typo in a three-letter word: "mai" is 0.14 like "mia") and some other row has them all; a row like
        # the query through its other words alone ("Lukas <anyone>" for "Lukas Ehrlichh") is then not listed
        # after the ones that have them all (the trigram tier listed it). A stage's statement is prepared too.
        fuzzy = len(normalized) >= MIN_FUZZY and (spaced or not digits)
        stages = [(False, False)] if not spaced and digits else []
        stages += [(bool(tsq), False), (False, fuzzy)] if fuzzy else [(bool(tsq), False)]
        rows = []
        for text_tier, fuzzy_tier in stages:
            if fuzzy_tier:  # first the rows with a look-alike of every query word
                cursor.execute(_words_sql(_tenant_condition(tenants)), params, prepare=True)
                params["alike"] = _alike_tsquery(cursor.fetchall())
                if params["alike"]:
                    cursor.execute(statement(text=False, fuzzy=False, words=True), params, prepare=True)
                    rows = cursor.fetchall()
                if rows:
                    break
            cursor.execute(statement(text=text_tier, fuzzy=fuzzy_tier), params, prepare=True)
            rows = cursor.fetchall()
            if rows:
                break
        # The typo tier ranks at most CANDIDATES look-alikes of a kind, taken in index order: with more, the best
        # could be among those left out. Such kinds are asked again with a stricter threshold (fewer, closer
        # look-alikes, a cheaper scan) until they fit: every row above the threshold of the last ask is then ranked,
        # so the best come first; the weaker rows of the earlier ask stay below them.
        cut = {row[0] for row in rows if row[6]}
        for stricter in STRICTER if fuzzy and cut else ():
            cursor.execute(
                "SELECT set_config('pg_trgm.word_similarity_threshold', %s::text, true)", [str(stricter)], prepare=True
            )
            cursor.execute(statement(text=False, fuzzy=True, only=cut), params, prepare=True)
            closer = cursor.fetchall()
            best = {(row[0], row[1]): row for row in rows}
            for row in closer:  # the same score for a row found twice: keep one
                best[(row[0], row[1])] = row
            rows = list(best.values())
            cut = {row[0] for row in closer if row[6]}
            if not cut:
                break
        if nested:
            cursor.execute(
                "SELECT set_config('pg_trgm.word_similarity_threshold', %s::text, true),"
                " set_config('pg_trgm.similarity_threshold', %s::text, true),"
                " set_config('enable_seqscan', %s::text, true), set_config('plan_cache_mode', %s::text, true)",
                # (unset before pg_trgm's first use: its defaults)
                [threshold or "0.6", alike_threshold or "0.3", seqscan, plan_cache_mode],
                prepare=True,
            )
    by_kind: dict[str, list[SearchHit]] = {kind.name: [] for kind in wanted}
    for kind_name, pk, tenant_id, score, title, subtitle, _cut in rows:
        by_kind[kind_name].append(SearchHit(kind_name, pk, tenant_id, float(score), title or "", subtitle or ""))
    groups = []
    for kind in wanted:
        hits = sorted(by_kind[kind.name], key=lambda h: (-h.score, h.id))
        if hits:
            groups.append(SearchGroup(kind.name, kind.label, hits[:limit], len(hits) > limit))
    order = {kind.name: index for index, kind in enumerate(KINDS)}
    groups.sort(key=lambda g: (-g.best, order[g.kind]))
    return SearchResults(query=query, groups=groups)
