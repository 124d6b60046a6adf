"""Marks what matched in a result's title and subtitle: `<mark>` around the matching characters, the rest
HTML-escaped. Accent- and case-blind like the search (`Müller` is marked for `muller`); a fuzzy match (a typo)
marks the words closest to the query's words."""

from __future__ import annotations

import difflib
import re
import unicodedata
from html import escape

FUZZY_RATIO = 0.6
_WORD = re.compile(r"\w+")


def _fold(char: str) -> str:
    decomposed = unicodedata.normalize("NFKD", char)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def folded(text: str) -> tuple[str, list[int]]:
    """The text lower-cased without accents, and for each of its characters the index of the original one."""
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for piece in _fold(char):
            out.append(piece)
            origin.append(index)
    return "".join(out), origin


def terms_of(query: str) -> list[str]:
    """The whole query and its words, longest first (folded)."""
    whole = " ".join(folded(query)[0].split())
    words = [w for w in _WORD.findall(whole) if w]
    terms = [whole, *words]
    return sorted({t for t in terms if t}, key=len, reverse=True)


def _spans(text: str, terms: list[str]) -> list[tuple[int, int]]:
    flat, origin = folded(text)
    spans: list[tuple[int, int]] = []
    missing: list[str] = []
    for term in terms:
        start = flat.find(term)
        if start < 0 and " " not in term:
            missing.append(term)
        while start >= 0:
            end = start + len(term)
            spans.append((origin[start], origin[end - 1] + 1))
            start = flat.find(term, end)
    if missing:  # typos: mark the words most like a query word that is not in the text as such
        for match in _WORD.finditer(flat):
            word = match.group()
            if any(difflib.SequenceMatcher(None, word, term).ratio() >= FUZZY_RATIO for term in missing):
                spans.append((origin[match.start()], origin[match.end() - 1] + 1))
    return spans


def mark(text: str, query: str) -> str:
    """`text` as HTML with the parts matching `query` in `<mark>`."""
    if not text:
        return ""
    spans = sorted(_spans(text, terms_of(query)))
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    out: list[str] = []
    position = 0
    for start, end in merged:
        out.append(escape(text[position:start]))
        out.append(f"<mark>{escape(text[start:end])}</mark>")
        position = end
    out.append(escape(text[position:]))
    return "".join(out)
