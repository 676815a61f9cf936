"""InfluxSink: readings and alert events as line-protocol points, written through influxdb-client.

Lines are built here as strings (`reading_line`, `event_line`); a point's key is (measurement, tag
set, device timestamp in ms), so a retried batch overwrites itself. Escaping, per the line
protocol reference:

- measurement: never from a payload; the device category, checked against `^[a-z][a-z0-9_]*$`.
- tag keys, tag values, field keys: `,` `=` and space are escaped with a backslash. A backslash, a
  line break or another control character there is rejected (`SinkRejected`): parsers disagree on
  backslashes (InfluxDB keeps `\\\\` as two, VictoriaMetrics reads one) and a line break would end
  the line, and these strings name a device, so changing them could merge two devices' series.
- string field values: `"` and `\\` are escaped; a line break (CR or LF) cannot be represented
  inside a line, so it is stored as the two characters `\\n` (or `\\r`).
- non-finite floats and integers outside int64 are rejected, as the servers would reject them.

A point written twice (a retry after a lost 2xx, a message handled twice) is one point in InfluxDB,
which overwrites it, but two samples in VictoriaMetrics unless it deduplicates
(`-dedup.minScrapeInterval=1ms`). VictoriaMetrics shows its flags at `/flags`: the sink reads them
before its first write and hourly after, and says what is wrong (`store_problem`, /healthz, log).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import WriteOptions, WriteType
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from edge.errors import SinkRejected, SinkUnavailable
from edge.model import AlertEvent, AlertStatus, FieldValue, Lane, Reading, epoch_ms
from edge.outbox import DeviceParts, ReadingRow, read_row
from edge.sinks.refusal import HTTP_TIMEOUT_S, refusal

_log = logging.getLogger(__name__)

_T = TypeVar("_T")

EVENT_MEASUREMENT = "alert_event"
STATUS_CODES: dict[AlertStatus, int] = {
    AlertStatus.ACTIVE: 0,
    AlertStatus.ACKNOWLEDGED: 1,
    AlertStatus.RESOLVED: 2,
}

_MEASUREMENT = re.compile(r"[a-z][a-z0-9_]*")
_ENUM_VALUE = re.compile(r"[a-z0-9_]+")
# A backslash, DEL or any C0 control character (line breaks included): not representable in a
# tag or key (see the module docstring).
_UNREPRESENTABLE = re.compile(r"[\\\x00-\x1f\x7f]")
_KEY_ESCAPES = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\\\n", "\r": "\\\\r"})
_RESERVED_FIELD_KEYS = frozenset({"time", "_field", "_measurement"})
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_ERROR_BODY_CHARS = 300
# Synchronous: the outbox owns retries and deletes a batch only after a 2xx (RELIABILITY trap 7).
# `max_retries` only drives the batching writer's WritesRetry, but it is zeroed so that a later
# change of write_type cannot bring retries back silently.
_WRITE_OPTIONS = WriteOptions(write_type=WriteType.synchronous, max_retries=0)
_PRECISION_MS = cast(WritePrecision, WritePrecision.MS)  # its stubs type the members as str
STORE_CHECK_S = 3600.0  # how often the store's deduplication is checked again
_DEDUP_FLAG = re.compile(r'^-dedup\.minScrapeInterval="?([^"\s]*)"?\s*$', re.MULTILINE)
_DEDUP_ZERO = re.compile(r"0+(\.0*)?(ns|us|µs|ms|s|m|h|d|w|y)?")


def _escape_key(text: str, what: str) -> str:
    """A tag key, tag value or field key, escaped; unrepresentable text is rejected."""
    if not text:
        raise SinkRejected(f"{what} is empty")
    if _UNREPRESENTABLE.search(text):
        raise SinkRejected(f"{what} {text!r} holds a backslash or a control character")
    return text.translate(_KEY_ESCAPES)


def _tag_set(tags: dict[str, str]) -> str:
    return "".join(
        f",{_escape_key(key, 'tag key')}={_escape_key(value, f'tag {key}')}"
        for key, value in sorted(tags.items())
    )


def _measurement(name: str) -> str:
    if not _MEASUREMENT.fullmatch(name):
        raise SinkRejected(f"measurement {name!r} does not match ^[a-z][a-z0-9_]*$")
    return name


# The escaped series of the most active devices and the few dozen field names are cached. A
# reading with four fields then costs about 2.5 µs (12 µs uncached; influxdb_client's Point about
# 10 µs). 8,192 series: chatty devices stay cached, a 100,000-device community costs ~3 MB here.
@functools.lru_cache(maxsize=8_192)
def _series(device: DeviceParts) -> str:
    """`<measurement>,<sorted device tags>` of a device's readings."""
    device_id, model, category, community, building, unit = device
    tags = {
        "community": community,
        "building": building,
        "device_id": device_id,
        "model": model,
    }
    if unit:
        tags["unit"] = unit
    return _measurement(category) + _tag_set(tags)


@functools.lru_cache(maxsize=4_096)
def _field_key(name: str) -> str:
    if name in _RESERVED_FIELD_KEYS:
        raise SinkRejected(f"field key {name!r} is reserved")
    return _escape_key(name, "field key")


def _field(key: str, value: FieldValue, name: str) -> str:
    """`key=value`, typed per the line protocol."""
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return f"{key}=true" if value else f"{key}=false"
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise SinkRejected(f"field {name!r} = {value} is outside int64")
        return f"{key}={value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SinkRejected(f"field {name!r} = {value} is not finite")
        return f"{key}={value!r}"  # repr: the shortest text that reads back as the same double
    return f'{key}="{_escape_string(value)}"'


def _escape_string(value: str) -> str:
    if '"' in value or "\\" in value or "\n" in value or "\r" in value:
        return value.translate(_STRING_ESCAPES)
    return value  # most values: translate() would cost more than these four scans


def _field_set(fields: dict[str, FieldValue]) -> str:
    """The fields in the reading's order, each enum state followed by its `<name>_<state>=1i`."""
    if not fields:
        raise SinkRejected("no fields")
    parts = []
    for name, value in fields.items():
        parts.append(_field(_field_key(name), value, name))
        # An enum state as its own 1i field: servers that keep no strings (VictoriaMetrics 1.79
        # stores them as 0) still see it, e.g. event_door_forced=1i.
        if isinstance(value, str) and _ENUM_VALUE.fullmatch(value):
            flag = f"{name}_{value}"
            if flag in fields:
                raise SinkRejected(f"state field {flag!r} collides with a field")
            parts.append(f"{_field_key(flag)}=1i")
    return ",".join(parts)


# A reading's flags are fields, `flag_time_zero=1i`, written only on flagged readings: a tag
# would split every flagged device's series in two (and each measurement field with it in
# VictoriaMetrics), while a field adds one series per device and flag actually seen.
FLAG_PREFIX = "flag_"


def reading_line(reading: Reading) -> str:
    """One reading as one line: `<category>,<device tags> <fields>[,flag_<flag>=1i...] <ms>`.

    Raises:
        SinkRejected: the reading cannot be written as line protocol (see the module docstring).
    """
    d = reading.device
    return _line(
        ReadingRow(
            (d.device_id, d.model, d.category, d.community, d.building, d.unit),
            reading.fields,
            epoch_ms(reading.at),
            [flag.value for flag in reading.flags],
        )
    )


def stored_reading_line(body: bytes) -> str:
    """A reading as the outbox stores it (`edge.outbox.rows`), as `reading_line` writes it.

    Raises:
        SinkRejected: the reading cannot be written as line protocol (see the module docstring).
    """
    return _line(read_row(body))


def _line(row: ReadingRow) -> str:
    try:
        fields = _field_set(row.fields)
        if row.flags:
            fields += _flag_set(row.flags, row.fields)
        return f"{_series(row.device)} {fields} {row.at_ms}"
    except SinkRejected as exc:
        raise SinkRejected(f"reading of device {row.device[0]!r}: {exc}") from exc


def _flag_set(flags: Sequence[str], fields: dict[str, FieldValue]) -> str:
    out = ""
    for flag in flags:
        key = FLAG_PREFIX + flag
        if key in fields:
            raise SinkRejected(f"flag field {key!r} collides with a field")
        out += f",{key}=1i"
    return out


def event_line(event: AlertEvent) -> str:
    """One alert event as one line of measurement `alert_event`.

    Raises:
        SinkRejected: the event cannot be written as line protocol.
    """
    alert = event.alert
    tags = {
        "community": alert.community,
        "building": alert.building,
        "device_id": alert.device_id,
        "model": alert.model,
        "category": alert.category,
        "rule": alert.rule,
        "severity": alert.severity.value,
        "kind": event.kind.value,
    }
    try:
        fields = ",".join(
            (
                _field("alert_id", event.id, "alert_id"),
                _field("count", alert.count, "count"),
                f"status_code={STATUS_CODES[alert.status]}i",
            )
        )
        return f"{EVENT_MEASUREMENT}{_tag_set(tags)} {fields} {epoch_ms(event.at)}"
    except SinkRejected as exc:
        raise SinkRejected(f"alert event {event.id!r}: {exc}") from exc


class InfluxSink:
    """Writes readings and alert events to an InfluxDB v2 write API (InfluxDB, VictoriaMetrics).

    Each call is one synchronous HTTP request run in a worker thread; the client never retries.
    `SinkUnavailable`: unreachable, timed out, 5xx, 408 or 429. `SinkRejected`: any other 4xx,
    or a point that cannot be written as line protocol.
    """

    name = "tsdb"
    lanes: frozenset[Lane] = frozenset({"readings", "events"})

    def __init__(
        self, url: str, org: str, bucket: str, token: str | None, timeout_s: float = HTTP_TIMEOUT_S
    ) -> None:
        self._url = url
        self._org = org
        self._bucket = bucket
        self._token = token
        # retries=False: urllib3 neither retries nor follows redirects; errors reach us at once.
        self._client: InfluxDBClient | None = InfluxDBClient(
            url=url,
            token=token or "",  # empty: no Authorization header
            org=org,
            timeout=max(1, round(timeout_s * 1000)),
            retries=False,
        )
        self._write_api = self._client.write_api(write_options=_WRITE_OPTIONS)
        self._timeout_s = timeout_s
        # what is wrong with the store for exactly-once samples (None: nothing we can see)
        self.store_problem: str | None = None
        self._store_checked_at: float | None = None  # time.monotonic() of the last check
        self._behind_vmagent = False  # the store's /flags are vmagent's (said once)

    async def write_readings(self, readings: Sequence[Reading]) -> None:
        await self._write(readings, reading_line)

    async def write_stored_readings(self, rows: Sequence[bytes]) -> None:
        await self._write(rows, stored_reading_line)

    async def write_events(self, events: Sequence[AlertEvent]) -> None:
        await self._write(events, event_line)

    async def close(self) -> None:
        if self._client is None:
            return
        client, self._client = self._client, None
        self._write_api.close()  # type: ignore[no-untyped-call]
        client.close()  # type: ignore[no-untyped-call]

    async def _write(self, items: Sequence[_T], line: Callable[[_T], str]) -> None:
        if not items:
            return
        if self._client is None:
            raise RuntimeError("InfluxSink is closed")
        # Lines are built in the worker thread too: a large batch must not stall the event loop.
        await asyncio.to_thread(self._post, items, line)

    def _post(self, items: Sequence[_T], line: Callable[[_T], str]) -> None:
        checked = self._store_checked_at
        if checked is None or time.monotonic() - checked >= STORE_CHECK_S:
            self._check_store()
        body = "\n".join(line(item) for item in items)
        try:
            self._write_api.write(
                bucket=self._bucket,
                org=self._org,
                record=body,
                write_precision=_PRECISION_MS,
            )
        except ApiException as exc:
            raise self._translate(exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise SinkUnavailable(
                f"tsdb at {self._url} unreachable: {self._redact(str(exc))}"
            ) from exc
        _log.debug("tsdb stored %d points", len(items))

    def _check_store(self) -> None:
        """Ask the store for its flags (VictoriaMetrics answers `/flags`; InfluxDB, which
        overwrites a point written twice, does not) and note whether it deduplicates."""
        try:
            response = urllib3.request(
                "GET",
                f"{self._url.rstrip('/')}/flags",
                timeout=self._timeout_s,
                retries=False,
                redirect=False,
            )
        except (urllib3.exceptions.HTTPError, OSError):
            return  # unreachable: the write says so; checked again before the next one
        self._store_checked_at = time.monotonic()
        text = response.data.decode(errors="replace")
        lines = [entry for entry in text.splitlines() if entry.strip()]
        if response.status != 200 or not lines or not all(x.startswith("-") for x in lines):
            problem = None  # not VictoriaMetrics' flag list: InfluxDB, or a proxy in front
        elif any(x.startswith("-remoteWrite.url") for x in lines):
            # vmagent: it forwards to a VictoriaMetrics whose flags it does not show
            problem = None
            if not self._behind_vmagent:
                self._behind_vmagent = True
                _log.warning(
                    "tsdb at %s is vmagent: it answers once a batch is in its queue and forwards "
                    "it; the deduplication of the VictoriaMetrics behind it cannot be checked "
                    "from here (it needs -dedup.minScrapeInterval=1ms)",
                    self._url,
                )
        else:
            match = _DEDUP_FLAG.search(text)
            value = match.group(1) if match else ""
            if not value or _DEDUP_ZERO.fullmatch(value):
                problem = (
                    f"VictoriaMetrics at {self._url} runs without -dedup.minScrapeInterval: a "
                    "point written again (a retry after a lost answer) is stored twice; start it "
                    "with -dedup.minScrapeInterval=1ms (in a cluster: on vmstorage and vmselect)"
                )
            elif value != "1ms":
                problem = (
                    f"VictoriaMetrics at {self._url} runs with -dedup.minScrapeInterval={value}: "
                    f"it keeps one sample per series per {value}, so readings closer together "
                    "are merged away; use -dedup.minScrapeInterval=1ms"
                )
            else:
                problem = None
        if problem != self.store_problem:
            if problem is not None:
                _log.warning("%s", problem)
            elif self.store_problem is not None:
                _log.warning("tsdb at %s deduplicates now: samples are exact", self._url)
        self.store_problem = problem

    def _translate(self, exc: ApiException) -> SinkRejected | SinkUnavailable:
        status = exc.status if isinstance(exc.status, int) else 0
        body = exc.body if isinstance(exc.body, str) else ""
        message = self._redact(
            f"tsdb at {self._url} answered {status} {exc.reason}: {body[:_ERROR_BODY_CHARS]}"
        )
        # 413 stays a rejection: the forwarder's split finds a size that passes. 0 (no status)
        # is retried like a 5xx.
        return refusal(status, message)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text
