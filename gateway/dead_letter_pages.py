"""Pages of dead letters, newest first, below an id or below a moment of receipt.

An outbox pages its dead letters by id (its ids follow receipt). Under `run --shards N` shard 0
lists every shard's, merged by when they were received (gateway/shard_desk.py), and continues a
merged page in each shard from a moment and a tie-breaking id rather than from one of its ids:
`received_before` with `before_id` asks for the letters whose (receipt in ms, id) sorts below both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from edge.model import DeadLetter, epoch_ms

SCAN = 500  # letters read a time while a page is filled (by scope, or from a moment)


class LetterSource(Protocol):
    """An outbox's (or a desk's) dead letters: newest first, below an id."""

    def __call__(self, limit: int, before_id: int | None) -> Awaitable[list[DeadLetter]]: ...


def letter_key(letter: DeadLetter) -> tuple[int, int]:
    """The order of a merged listing: receipt in ms, then id (newest first: descending)."""
    return epoch_ms(letter.received_at), letter.id or 0


@dataclass(frozen=True, slots=True)
class LetterQuery:
    """Which page: up to `limit` letters below `before_id`, or with `received_before`, below the
    key (its ms, `before_id`)."""

    limit: int
    before_id: int | None = None
    received_before: datetime | None = None

    def params(self) -> dict[str, str | int | list[str]]:
        """The query as the gateway's `GET /v1/dead-letters` takes it (how shard 0 asks a
        sibling shard under `run --shards N`)."""
        params: dict[str, str | int | list[str]] = {"limit": self.limit}
        if self.before_id is not None:
            params["before_id"] = self.before_id
        if self.received_before is not None:
            params["received_before"] = self.received_before.isoformat()
        return params


async def letters_page(
    read: LetterSource,
    query: LetterQuery,
    keep: Callable[[DeadLetter], bool] = lambda letter: True,
) -> list[DeadLetter]:
    """Up to `query.limit` letters that `keep` accepts, newest first.

    From a moment the walk starts at the newest letter: the id then breaks ties between letters
    received in one millisecond and need not be one of this source's. So a page deep in a long
    list costs a read of every newer letter (SCAN at a time).
    """
    moment = query.received_before
    bound = None if moment is None else (epoch_ms(moment), query.before_id or 2**63)
    found: list[DeadLetter] = []
    cursor = query.before_id if bound is None else None
    batch = max(query.limit, SCAN)
    while len(found) < query.limit:
        page = await read(batch, cursor)
        found.extend(d for d in page if (bound is None or letter_key(d) < bound) and keep(d))
        if len(page) < batch or page[-1].id is None:
            break
        cursor = page[-1].id
    return found[: query.limit]
