"""The shared vocabulary: `Reading.trusted` makes what `model_construct` makes, faster."""

from __future__ import annotations

from datetime import UTC, datetime

from edge.model import DeviceRef, Reading, ReadingFlag

AT = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)


def test_a_trusted_reading_is_the_reading_model_construct_makes() -> None:
    device = DeviceRef("d1", "tuya-sos-button", "sos", "c1", "b1", "u1")
    trusted = Reading.trusted(
        device, {"action": "emergency"}, AT, AT, "device", 7, (ReadingFlag.TIME_MISSING,)
    )
    constructed = Reading.model_construct(
        device=device,
        fields={"action": "emergency"},
        at=AT,
        received_at=AT,
        time_source="device",
        seq=7,
        flags=(ReadingFlag.TIME_MISSING,),
    )
    assert trusted == constructed
    assert repr(trusted) == repr(constructed)
    assert trusted.model_dump_json() == constructed.model_dump_json()
    assert trusted.model_fields_set == constructed.model_fields_set
    # a copy gets its own set of fields, as pydantic's own copies do
    copied = trusted.model_copy(update={"seq": 8})
    assert (copied.seq, trusted.seq) == (8, 7)
    assert Reading.model_validate_json(trusted.model_dump_json()) == trusted
