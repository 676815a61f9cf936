"""Pages of dead letters: below an id, or below a moment of receipt with an id breaking ties (how
shard 0 continues a page of every shard's in each of them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge.model import DeadLetter
from gateway.dead_letter_pages import LetterQuery, letters_page

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


class _Outbox:
    """Dead letters by id, newest first, as an outbox pages them; counts the reads."""

    def __init__(self, letters: list[DeadLetter]) -> None:
        self.letters = sorted(letters, key=lambda d: d.id or 0, reverse=True)
        self.reads = 0

    async def __call__(self, limit: int, before_id: int | None) -> list[DeadLetter]:
        self.reads += 1
        below = [d for d in self.letters if before_id is None or (d.id or 0) < before_id]
        return below[:limit]


def _letter(letter_id: int, at_ms: int, community: str = "c1") -> DeadLetter:
    return DeadLetter(
        id=letter_id,
        topic=f"ce/{community}/b1/tuya-sos-button/sos-{letter_id}",
        payload=b"{",
        cause="bad_payload",
        detail="not JSON",
        received_at=START + timedelta(milliseconds=at_ms),
    )


async def test_a_page_continues_below_the_last_id() -> None:
    outbox = _Outbox([_letter(n, n * 10) for n in range(1, 8)])
    first = await letters_page(outbox, LetterQuery(3))
    second = await letters_page(outbox, LetterQuery(3, first[-1].id))
    assert [d.id for d in first + second] == [7, 6, 5, 4, 3, 2]


async def test_from_a_moment_the_id_breaks_ties_within_its_millisecond() -> None:
    # letters 4 and 5 came in the same millisecond as the moment; only those below id 5 are older
    outbox = _Outbox([_letter(1, 10), _letter(2, 20), _letter(3, 30)])
    outbox.letters = [_letter(6, 50), _letter(5, 40), _letter(4, 40), *outbox.letters]
    moment = START + timedelta(milliseconds=40)
    page = await letters_page(outbox, LetterQuery(10, 5, received_before=moment))
    assert [d.id for d in page] == [4, 3, 2, 1]
    # an id from another shard's numbering only breaks the tie: 1 lets none of that ms through
    assert [
        d.id for d in await letters_page(outbox, LetterQuery(10, 1, received_before=moment))
    ] == [3, 2, 1]


async def test_a_scoped_page_is_filled_from_further_reads() -> None:
    letters = [_letter(n, n, "c1" if n % 10 == 0 else "c2") for n in range(1, 1201)]
    outbox = _Outbox(letters)
    page = await letters_page(outbox, LetterQuery(5), keep=lambda d: "/c1/" in d.topic)
    assert [d.id for d in page] == [1200, 1190, 1180, 1170, 1160]
    deep = await letters_page(outbox, LetterQuery(200), keep=lambda d: "/c1/" in d.topic)
    assert len(deep) == 120  # every one there is, read 500 at a time
    assert outbox.reads == 1 + 3
