"""Keyset cursor pagination over lazily generated, sorted runs of records."""

from __future__ import annotations

import base64
import bisect
import heapq
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

Key = tuple[Any, Any]  # (sort value, numeric id): unique and totally ordered within one ordering
MAX_PAGE_SIZE = 250


class PageError(Exception):
    """A pagination argument Shopify would reject; the GraphQL layer turns it into an error."""

    def __init__(self, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Segment(Protocol):
    def walk(self, start: Key | None, reverse: bool, inclusive: bool) -> Iterator[tuple[Key, int]]: ...


class MonotoneSegment:
    """refs lo..hi whose keys strictly increase with the ref, so a cursor is found by bisection."""

    def __init__(self, lo: int, hi: int, key: Callable[[int], Key], skip: Callable[[int], bool]) -> None:
        self.lo, self.hi, self.key, self.skip = lo, hi, key, skip

    def _first_after(self, start: Key, inclusive: bool) -> int:
        lo, hi = self.lo, self.hi + 1
        while lo < hi:
            mid = (lo + hi) // 2
            k = self.key(mid)
            if k < start or (k == start and not inclusive):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def walk(self, start: Key | None, reverse: bool, inclusive: bool) -> Iterator[tuple[Key, int]]:
        if self.hi < self.lo:
            return
        if not reverse:
            first = self.lo if start is None else self._first_after(start, inclusive)
            refs = range(first, self.hi + 1)
        else:
            # last ref with key < start (or <= when inclusive)
            last = self.hi if start is None else self._first_after(start, not inclusive) - 1
            refs = range(last, self.lo - 1, -1)
        for ref in refs:
            if not self.skip(ref):
                yield self.key(ref), ref


class ListSegment:
    """An explicit, already sorted list of (key, ref)."""

    def __init__(self, entries: list[tuple[Key, int]]) -> None:
        self.entries = entries
        self.keys = [k for k, _ in entries]

    def walk(self, start: Key | None, reverse: bool, inclusive: bool) -> Iterator[tuple[Key, int]]:
        if not reverse:
            i = 0 if start is None else (bisect.bisect_left if inclusive else bisect.bisect_right)(self.keys, start)
            yield from self.entries[i:]
        else:
            j = len(self.entries) if start is None else (
                bisect.bisect_right if inclusive else bisect.bisect_left)(self.keys, start)
            yield from reversed(self.entries[:j])


def merge(segments: list[Segment], start: Key | None, reverse: bool, inclusive: bool = False
          ) -> Iterator[tuple[Key, int]]:
    walks = [s.walk(start, reverse, inclusive) for s in segments]
    if len(walks) == 1:
        return walks[0]
    return heapq.merge(*walks, key=lambda entry: entry[0], reverse=reverse)


@dataclass(frozen=True)
class Cursor:
    sort: str
    key: Key
    ahead: int | None  # 1-based position counted from the start of the list, when known
    behind: int | None  # 1-based position counted from the end of the list, when known


def encode_cursor(sort: str, key: Key, ahead: int | None, behind: int | None) -> str:
    # Shopify's cursors are base64 JSON with last_id/last_value; positions ride along so the
    # pagination limit needs no count of what came before.
    payload: dict[str, Any] = {"last_id": key[1], "last_value": key[0], "sort": sort}
    if ahead is not None:
        payload["p"] = ahead
    if behind is not None:
        payload["q"] = behind
    return base64.b64encode(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()).decode()


def decode_cursor(raw: str, sort: str) -> Cursor:
    try:
        payload = json.loads(base64.b64decode(raw.encode(), validate=True))
        key = (payload["last_value"], payload["last_id"])
        if payload.get("sort") != sort:
            raise ValueError("cursor from another ordering")
        ahead, behind = payload.get("p"), payload.get("q")
    except (ValueError, KeyError, TypeError) as err:
        raise PageError("Invalid cursor for current pagination sort.") from err
    return Cursor(sort, key, ahead, behind)


@dataclass
class Page:
    refs: list[int]
    cursors: list[str]
    has_next: bool
    has_previous: bool


def check_window(field: str, first: int | None, last: int | None) -> int:
    """Validate first/last the way Shopify does before walking anything."""
    if first is None and last is None:
        raise PageError("you must provide one of first or last")
    if first is not None and last is not None:
        raise PageError("providing both first and last is not supported")
    name, size = ("first", first) if first is not None else ("last", last)
    assert size is not None
    if size < 0 or size > MAX_PAGE_SIZE:
        raise PageError(
            f"Argument '{name}' on Field '{field}' has an invalid value ({size}). "
            f"Expected a value between 0 and {MAX_PAGE_SIZE}.",
            code="argumentLiteralsIncompatible",
        )
    return size


def paginate(
    segments: list[Segment],
    match: Callable[[int], bool],
    *,
    sort: str,
    field: str,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    descending: bool = False,
    limit: int | None = None,
    seek: Key | None = None,
) -> Page:
    """One page of refs in order; `seek` lets a range filter on the sort field skip ahead."""
    size = check_window(field, first, last)
    a = decode_cursor(after, sort) if after else None
    b = decode_cursor(before, sort) if before else None
    forward = first is not None
    walk_down = descending if forward else not descending  # walking towards smaller keys?
    edge = a if forward else b  # the cursor we walk away from
    stop = b if forward else a  # the cursor we must not cross
    start = edge.key if edge else None
    if not walk_down and seek is not None and (start is None or seek > start):
        start = seek
    found: list[tuple[Key, int]] = []
    crossed_stop = False
    try:
        for key, ref in merge(segments, start, reverse=walk_down):
            if stop is not None and ((key <= stop.key) if walk_down else (key >= stop.key)):
                crossed_stop = True
                break
            if not match(ref):
                continue
            found.append((key, ref))
            if len(found) > size:
                break
        # Anything on the far side of the cursor we started from?
        behind_edge = edge is not None and _any_match(segments, match, edge.key, not walk_down)
    except TypeError as err:  # a cursor whose values do not compare with this ordering's
        raise PageError("Invalid cursor for current pagination sort.") from err
    more = len(found) > size or crossed_stop
    found = found[:size]
    # Positions from the side we walk from; the other side's only when the cursor knew it.
    if edge is None:
        near: int | None = 0
    else:
        near = edge.ahead if forward else edge.behind
    far = None if edge is None else (edge.behind if forward else edge.ahead)
    if limit is not None and near is not None and near + len(found) > limit:
        raise PageError(
            f"Pagination is limited to the first {limit} items of a list; narrow the query "
            "with filters, or use a bulk operation to read everything.",
        )
    cursors = []
    for n, (key, _) in enumerate(found, start=1):
        pos_near = None if near is None else near + n
        pos_far = None if far is None else far - n
        ahead, behind = (pos_near, pos_far) if forward else (pos_far, pos_near)
        cursors.append(encode_cursor(sort, key, ahead, behind))
    refs = [ref for _, ref in found]
    if forward:
        return Page(refs, cursors, has_next=more, has_previous=behind_edge)
    refs.reverse()
    cursors.reverse()
    return Page(refs, cursors, has_next=behind_edge, has_previous=more)


def _any_match(segments: list[Segment], match: Callable[[int], bool], key: Key, reverse: bool) -> bool:
    return any(match(ref) for _, ref in merge(segments, key, reverse=reverse, inclusive=True))


def list_segment(items: list[Any], key: Callable[[Any], Key]) -> tuple[ListSegment, list[Any]]:
    """Order an in-memory list (variants, media, line items...) for `paginate`; refs index `items`."""
    entries = sorted(((key(item), i) for i, item in enumerate(items)), key=lambda e: e[0])
    return ListSegment(entries), items
