"""A device's readings read back from the time-series server the agent writes them to
(`tsdb.url`: VictoriaMetrics), for the console's charts when there is no embedded reading store.

The agent writes a reading as one line-protocol point, measurement = the device's category, tags
community / building / device_id / model / unit, one field per value (edge.sinks.influx).
VictoriaMetrics keeps each numeric field as the series `<category>_<field>` with those tags, so
`/api/v1/export` of `{__name__=~"<category>_.+", device_id=..., community=...}` over a window
gives every field back; the samples of one timestamp are one reading again. What does not come
back as written: string fields (VictoriaMetrics keeps a string as 0) and whether a field was
on/off (true is 1). An enum state is put back from the `<field>_<state> = 1` flag the agent writes
beside it for that reason: a field that is 0 throughout and has such flags was a string, and at
each reading it is the state whose flag is 1 there (`action = "emergency"`, as the embedded store
gives it; a string with no flag, free text, is left out). A point reaches a query about a second after it is written (a device's first
up to ~10 s later).

Failures (the server down, slow, refusing, or not a VictoriaMetrics: InfluxDB has no
`/api/v1/export`) are a `TsdbUnavailable` with a reason the page shows.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Final

import httpx

from edge.model import FieldValue
from edge.sinks import StoredReading
from gateway.settings import TsdbSettings

_log = logging.getLogger(__name__)
TIMEOUT_S: Final = 3.0
_BODY_CHARS = 200


class TsdbUnavailable(Exception):
    """The time-series server could not be read; the message says why."""


def _quoted(value: str) -> str:
    """A label value inside a series selector's double quotes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _number(value: float) -> FieldValue:
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _put_back_states(points: dict[int, dict[str, FieldValue]]) -> None:
    """Enum fields as strings again, from their `<field>_<state>` flags (see the module)."""
    names = {name for fields in points.values() for name in fields}

    def always(name: str, value: int) -> bool:
        return all(fields.get(name, value) == value for fields in points.values())

    flags = {name for name in names if always(name, 1)}  # a flag is 1 where it is written
    strings = {
        name for name in names if any(f.startswith(f"{name}_") for f in flags) and always(name, 0)
    }
    for fields in points.values():
        for name in strings:
            mine = [f for f in fields if f in flags and f.startswith(f"{name}_")]
            for flag in mine:
                del fields[flag]
            fields.pop(name, None)
            if len(mine) == 1:
                fields[name] = mine[0].removeprefix(f"{name}_")


class TsdbReadings:
    """Reads readings back from a VictoriaMetrics at `url` (its InfluxDB write address)."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url.rstrip("/")
        self._headers = {"Authorization": f"Token {token}"} if token else {}
        self._timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"TsdbReadings({self.url!r})"  # never the token

    async def query(
        self,
        *,
        device_id: str,
        community: str,
        category: str,
        since: datetime,
        until: datetime,
        limit: int,
    ) -> list[StoredReading]:
        """The device's readings from `since` (inclusive) to `until` (exclusive), newest first,
        at most `limit`.

        Raises:
            TsdbUnavailable: the server did not answer, or answered with an error.
        """
        prefix = f"{category}_"
        selector = (
            f'{{__name__=~"{category}_.+",device_id={_quoted(device_id)},'
            f"community={_quoted(community)}}}"
        )
        params = {
            "match[]": selector,
            "start": f"{since.timestamp():.3f}",
            "end": f"{until.timestamp():.3f}",
        }
        try:
            async with httpx.AsyncClient(timeout=self._timeout_s, headers=self._headers) as client:
                response = await client.get(f"{self.url}/api/v1/export", params=params)
        except httpx.HTTPError as exc:
            raise TsdbUnavailable(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code == 404:
            raise TsdbUnavailable(
                f"{self.url} has no /api/v1/export: the console reads readings back from "
                "VictoriaMetrics only (InfluxDB is written to, not read back)"
            )
        if response.status_code != 200:
            raise TsdbUnavailable(
                f"{self.url} answered {response.status_code}: {response.text[:_BODY_CHARS]}"
            )
        until_ms = until.timestamp() * 1000
        points: dict[int, dict[str, FieldValue]] = {}
        tags: dict[str, str] = {}
        for line in response.text.splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                metric: dict[str, str] = row["metric"]
                samples = zip(row["timestamps"], row["values"], strict=True)
            except (ValueError, KeyError, TypeError) as exc:
                raise TsdbUnavailable(
                    f"{self.url}: an export line is not understood: {exc}"
                ) from exc
            field = metric.get("__name__", "").removeprefix(prefix)
            tags = metric
            for at_ms, value in samples:
                if at_ms < until_ms and value is not None:
                    points.setdefault(int(at_ms), {})[field] = _number(float(value))
        _put_back_states(points)
        newest = sorted(points.items(), reverse=True)[:limit]
        return [
            StoredReading(
                device_id=device_id,
                at=datetime.fromtimestamp(at_ms / 1000, UTC),
                category=category,
                community=community,
                building=tags.get("building", ""),
                model=tags.get("model", ""),
                fields=dict(sorted(fields.items())),
            )
            for at_ms, fields in newest
        ]


def tsdb_readings(settings: TsdbSettings) -> TsdbReadings | None:
    """The reader of the configured time-series server; None when readings stay on the gateway."""
    if settings.url is None:
        return None
    token = settings.token.get_secret_value() if settings.token else None
    return TsdbReadings(settings.url, token)
