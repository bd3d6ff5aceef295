"""Shopify's `query:` search syntax: terms, field:value, comparators, AND/OR/NOT, parentheses."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

# Field kinds: how a field compares.  getter(record) -> value.
TEXT, KEYWORD, TIME, NUMBER, BOOL, TAGS, TAGS_NOT = "text", "keyword", "time", "number", "bool", "tags", "tags_not"


@dataclass(frozen=True)
class FieldSpec:
    kind: str
    get: Callable[[Any], Any]
    # Optional value normaliser (e.g. "#1001" -> "1001" for order names).
    normalise: Callable[[str], str] | None = None


@dataclass
class Term:
    field: str | None  # None: free text
    op: str  # ":", ">", ">=", "<", "<="
    value: str


@dataclass
class Node:
    kind: str  # "and", "or", "not", "term"
    children: list[Node] = field(default_factory=list)
    term: Term | None = None


@dataclass
class Query:
    """A parsed query, evaluated against records with a field table."""

    root: Node | None
    fields: dict[str, FieldSpec]
    text: Callable[[Any], str]
    warnings: list[dict[str, str]]
    raw: str

    def __call__(self, record: Any) -> bool:
        return self.root is None or _eval(self.root, record, self)

    def required(self, field_name: str) -> list[Term]:
        """The terms on `field_name` that every match must satisfy (top-level, not negated)."""
        return [term for term in _conjuncts(self.root) if term.field == field_name]

    def lower_bound(self, field_name: str) -> tuple[str, bool] | None:
        """(value, inclusive) when the whole query requires `field_name` > / >= a time."""
        terms = _conjuncts(self.root)
        best = None
        for term in terms:
            if term.field == field_name and term.op in (">", ">="):
                moment = parse_time(term.value)
                if moment is None:
                    continue
                value = moment[0].strftime("%Y-%m-%dT%H:%M:%SZ")
                candidate = (value, term.op == ">=")
                if best is None or candidate[0] > best[0]:
                    best = candidate
        return best


TOKEN = re.compile(r"""\s*(\(|\)|(?:[^\s()"']|"[^"]*"|'[^']*')+)""")


def parse(raw: str | None, fields: dict[str, FieldSpec], text: Callable[[Any], str]) -> Query:
    raw = raw or ""
    tokens = [m.group(1) for m in TOKEN.finditer(raw) if m.group(1).strip()]
    warnings: list[dict[str, str]] = []
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def parse_or() -> Node | None:
        nonlocal pos
        parts = [parse_and()]
        while peek() == "OR":
            pos += 1
            parts.append(parse_and())
        present: list[Node] = [p for p in parts if p is not None]
        if not present:
            return None
        return present[0] if len(present) == 1 else Node("or", present)

    def parse_and() -> Node | None:
        nonlocal pos
        parts = []
        while (tok := peek()) is not None and tok not in (")", "OR"):
            if tok == "AND":
                pos += 1
                continue
            node = parse_unary()
            if node is not None:
                parts.append(node)
        if not parts:
            return None
        return parts[0] if len(parts) == 1 else Node("and", parts)

    def parse_unary() -> Node | None:
        nonlocal pos
        tok = peek()
        assert tok is not None
        if tok == "NOT":
            pos += 1
            inner = parse_unary() if peek() not in (None, ")") else None
            return Node("not", [inner]) if inner else None
        if tok == "(":
            pos += 1
            inner = parse_or()
            if peek() == ")":
                pos += 1
            return inner
        pos += 1
        negate = tok.startswith("-") and len(tok) > 1
        if negate:
            tok = tok[1:]
        node = _term(tok, fields, warnings)
        if node is None:
            return None
        return Node("not", [node]) if negate else node

    root = parse_or()
    while pos < len(tokens):  # stray ')' : skip and keep parsing, like a lenient search box
        pos += 1
        extra = parse_or()
        if extra is not None:
            root = extra if root is None else Node("and", [root, extra])
    return Query(root, fields, text, warnings, raw)


def _term(tok: str, fields: dict[str, FieldSpec], warnings: list[dict[str, str]]) -> Node | None:
    m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*):(>=|<=|>|<)?(.*)$", tok)
    if not m:
        return Node("term", term=Term(None, ":", _unquote(tok)))
    name, op, value = m.group(1).lower(), m.group(2) or ":", _unquote(m.group(3))
    if name not in fields:
        # Shopify ignores unknown filters and says so in extensions.search.
        warnings.append({"field": name, "message": "Invalid search field for this query."})
        return None
    return Node("term", term=Term(name, op, value))


def _unquote(value: str) -> str:
    out = re.sub(r"""(["'])(.*?)\1""", r"\2", value)
    return out


def _conjuncts(node: Node | None) -> list[Term]:
    if node is None:
        return []
    if node.kind == "term" and node.term is not None:
        return [node.term]
    if node.kind == "and":
        return [t for child in node.children for t in _conjuncts(child)]
    return []


def _eval(node: Node, record: Any, query: Query) -> bool:
    if node.kind == "and":
        return all(_eval(c, record, query) for c in node.children)
    if node.kind == "or":
        return any(_eval(c, record, query) for c in node.children)
    if node.kind == "not":
        return not _eval(node.children[0], record, query)
    term = node.term
    assert term is not None
    if term.field is None:
        needle = term.value.rstrip("*").casefold()
        return needle in query.text(record).casefold()
    spec = query.fields[term.field]
    return _match(spec, spec.get(record), term)


def _match(spec: FieldSpec, actual: Any, term: Term) -> bool:
    value = term.value
    if spec.normalise:
        value = spec.normalise(value)
    if spec.kind == TIME:
        return _match_time(actual, term.op, value)
    if spec.kind == NUMBER:
        try:
            wanted = float(value)
        except ValueError:
            return False
        if actual is None:
            return False
        return _compare(float(actual), term.op, wanted)
    if spec.kind == BOOL:
        return bool(actual) == (value.lower() in ("true", "1", "yes"))
    if spec.kind in (TAGS, TAGS_NOT):
        wanted_tags = {v.strip().casefold() for v in value.split(",")}
        hit = any(t.casefold() in wanted_tags for t in actual)
        return hit if spec.kind == TAGS else not hit
    if spec.kind == KEYWORD:
        options = {v.strip().casefold() for v in value.split(",")}
        values = actual if isinstance(actual, (list, tuple, set, frozenset)) else (actual,)
        return any(str(v).casefold() in options for v in values if v is not None)
    # TEXT: phrase / prefix match
    if actual is None:
        return False
    return value.rstrip("*").casefold() in str(actual).casefold()


def _compare(actual: Any, op: str, wanted: Any) -> bool:
    if op == ">":
        return actual > wanted
    if op == ">=":
        return actual >= wanted
    if op == "<":
        return actual < wanted
    if op == "<=":
        return actual <= wanted
    return actual == wanted


def parse_time(value: str) -> tuple[datetime, datetime] | None:
    """[start, end) of the instant or day/year a search value names."""
    value = value.strip()
    if value.lower() == "now":
        now = datetime.now(UTC).replace(microsecond=0)
        return now, now + timedelta(seconds=1)
    try:
        if re.fullmatch(r"\d{4}", value):
            start = datetime(int(value), 1, 1, tzinfo=UTC)
            return start, datetime(int(value) + 1, 1, 1, tzinfo=UTC)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            day = date.fromisoformat(value)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return start, start + timedelta(days=1)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment, moment + timedelta(seconds=1)


def _match_time(actual: datetime | None, op: str, value: str) -> bool:
    span = parse_time(value)
    if span is None or actual is None:
        return False
    start, end = span
    if op == ">":
        return actual >= end
    if op == ">=":
        return actual >= start
    if op == "<":
        return actual < start
    if op == "<=":
        return actual < end
    return start <= actual < end


def search_extension(path: str, query: Query) -> dict[str, Any] | None:
    """The `extensions.search` entry Shopify adds when it ignored part of a query."""
    if not query.warnings:
        return None
    return {"path": [path], "query": query.raw, "warnings": query.warnings}
