"""The desk of shard 0 under `run --shards N`: one API over every shard's alerts.

Each shard keeps its own alert store (SQLite, WAL) in its data dir. Shard 0's API reads its
siblings' stores directly (WAL lets a reader beside the writing process) and merges their pages
by the same keyset the store pages by (opening time, id; newest first), so a cursor from a merged
page is valid for every store. An action (acknowledge, resolve, assign) on a sibling's alert goes
to the shard that owns it, through that shard's own API on loopback: one process decides each
alert's lifecycle, so two shards never race on one alert.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from edge.agent import Agent, Desk
from edge.alerts import (
    AlertPage,
    AlertStore,
    Incident,
    Summary,
    decode_cursor,
    encode_cursor,
)
from edge.enrich import DeviceDetails, DeviceState, Household, Shard, Status, Unregistered
from edge.errors import AlertNotFound, AlertTransitionError, IncidentNotFound
from edge.model import Alert, AlertEvent, AlertStatus, DeviceRef, Severity, epoch_ms
from gateway.api.errors import error_response
from gateway.metrics import merge_shards
from gateway.shard_sync import LIVENESS_FILE, read_liveness

_log = logging.getLogger(__name__)

API_URL_FILE = "api-url"  # a shard writes its API's address here once it listens
PEER_TIMEOUT_S = 5.0
HEALTH_TIMEOUT_S = 2.0  # a hung sibling must not hold up the gateway's /healthz


class ShardUnavailable(Exception):
    """The shard that owns an alert cannot act on it now (starting, restarting): 503."""


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    return error_response(503, f"{exc}; try again in a few seconds")


def install_error_handler(app: FastAPI) -> None:
    """Answer ShardUnavailable with 503."""
    app.add_exception_handler(ShardUnavailable, _unavailable)


def serve_shard_metrics(app: FastAPI, desk: ShardDesk) -> None:
    """Shard 0's `/metrics` with every sibling's samples, labelled by shard (one scrape target
    for the gateway; the siblings' APIs listen on loopback only)."""
    render: Callable[[], Awaitable[str]] = app.state.render_metrics

    async def with_siblings() -> str:
        own, siblings = await asyncio.gather(render(), desk.sibling_metrics())
        return merge_shards(own, siblings, own_name="shard-0")

    app.state.render_metrics = with_siblings


def write_api_url(data_dir: Path, url: str) -> None:
    """Say where this shard's API listens, for shard 0 to forward actions to it."""
    path = data_dir / API_URL_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(url + "\n", encoding="utf-8")
    tmp.replace(path)


class ShardDesk(Desk):
    """A desk over this shard's agent and the alert stores of its sibling shards."""

    def __init__(self, agent: Agent, peers: list[Path], token: str) -> None:
        """`peers`: the sibling shards' data dirs; `token`: the bootstrap token they share."""
        super().__init__(agent)
        self._agent_ref = agent
        self._peer_dirs = list(peers)
        self._stores: dict[Path, AlertStore] = {}
        self._token = token
        # the siblings' devices as their last liveness.json said: (mtime, devices, unregistered
        # topics) per peer
        self._devices: dict[
            Path, tuple[float, list[tuple[DeviceRef, DeviceState]], list[Unregistered]]
        ] = {}
        self._merged: tuple[
            list[tuple[DeviceRef, DeviceState]], dict[str, tuple[DeviceRef, DeviceState]]
        ] = ([], {})

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()

    def _peers(self) -> Iterator[tuple[Path, AlertStore]]:
        """The sibling stores that exist by now (a shard starting late has none yet)."""
        for directory in self._peer_dirs:
            store = self._stores.get(directory)
            if store is None:
                path = directory / "alerts.db"
                if not path.exists():
                    continue
                store = self._stores[directory] = AlertStore(path)
            yield directory, store

    def _all(self) -> Iterator[AlertStore]:
        yield self._agent_ref.alert_store
        for _, store in self._peers():
            yield store

    # -- reads: merged -------------------------------------------------------------------------

    def alerts(
        self,
        communities: list[str] | None,
        status: AlertStatus | None,
        severity: Severity | None,
        limit: int,
        cursor: str | None,
    ) -> AlertPage:
        if cursor is not None:
            decode_cursor(cursor)  # InvalidCursor before any store is asked
        pages = [
            store.list(
                communities=communities,
                status=status,
                severity=severity,
                limit=limit,
                cursor=cursor,
            )
            for store in self._all()
        ]

        def key(alert: Alert) -> tuple[int, str]:
            return epoch_ms(alert.opened_at), alert.id

        merged = list(
            heapq.merge(*(p.items for p in pages), key=key, reverse=True)  # each newest first
        )
        items = merged[:limit]
        more = len(merged) > limit or any(p.next_cursor is not None for p in pages)
        next_cursor = None
        if more and items:
            last = items[-1]
            next_cursor = encode_cursor(epoch_ms(last.opened_at), last.id)
        return AlertPage(items, next_cursor)

    def alert(self, alert_id: str) -> Alert | None:
        for store in self._all():
            found = store.get(alert_id)
            if found is not None:
                return found
        return None

    def history(self, alert_id: str) -> list[AlertEvent]:
        for store in self._all():
            if store.get(alert_id) is not None:
                return store.history(alert_id)
        return []

    def communities(self) -> list[str]:
        return sorted({c for store in self._all() for c in store.communities()})

    def incidents(
        self, communities: list[str] | None, open_only: bool, min_alerts: int, limit: int
    ) -> list[Incident]:
        # a building's correlation lives in one shard: each incident is in exactly one store
        found = [
            incident
            for store in self._all()
            for incident in store.incidents(
                communities=communities, open_only=open_only, min_alerts=min_alerts, limit=limit
            )
        ]
        found.sort(key=lambda i: (i.opened_at, i.id), reverse=True)
        return found[:limit]

    def incident(self, incident_id: str) -> tuple[Incident, list[Alert]] | None:
        for store in self._all():
            found = store.incident(incident_id)
            if found is not None:
                return found
        return None

    async def act_on_incident(
        self, incident_id: str, action: str, actor: str, note: str | None
    ) -> Incident:
        peer = self._incident_owner(incident_id)
        if peer is None:
            return await super().act_on_incident(incident_id, action, actor, note)
        verb = "ack" if action == "acknowledge" else "resolve"
        body: dict[str, object] = {} if note is None else {"note": note}
        response = await self._send(peer, "POST", f"/v1/incidents/{incident_id}/{verb}", body)
        if response.status_code == 404:
            raise IncidentNotFound(f"no incident {incident_id!r}")
        if response.status_code == 409:
            raise AlertTransitionError(response.json().get("detail", "not allowed"))
        if response.status_code != 200:
            raise ShardUnavailable(
                f"the shard that owns incident {incident_id} answered {response.status_code}"
            )
        return Incident.model_validate(response.json())

    def _incident_owner(self, incident_id: str) -> Path | None:
        if self._agent_ref.alert_store.incident(incident_id) is not None:
            return None
        for directory, store in self._peers():
            if store.incident(incident_id) is not None:
                return directory
        return None

    def summary(self, community: str, since: datetime, until: datetime) -> Summary:
        others = [store for _, store in self._peers()]
        return self._agent_ref.alert_store.summary(community, since, until, others)

    # -- actions: by the owning shard ----------------------------------------------------------

    async def acknowledge(self, alert_id: str, actor: str, note: str | None) -> Alert:
        peer = self._owner(alert_id)
        if peer is None:
            return await super().acknowledge(alert_id, actor, note)
        return await self._forward(peer, alert_id, "ack", {"note": note})

    async def resolve(self, alert_id: str, actor: str, note: str | None) -> Alert:
        peer = self._owner(alert_id)
        if peer is None:
            return await super().resolve(alert_id, actor, note)
        return await self._forward(peer, alert_id, "resolve", {"note": note})

    async def assign(self, alert_id: str, assignee: str, actor: str, note: str | None) -> Alert:
        peer = self._owner(alert_id)
        if peer is None:
            return await super().assign(alert_id, assignee, actor, note)
        return await self._forward(peer, alert_id, "assign", {"assignee": assignee, "note": note})

    # -- devices: this shard's, then each sibling's as its liveness.json says --------------------

    def _sibling_devices(self) -> list[tuple[DeviceRef, DeviceState]]:
        """Every sibling's devices, re-read only when its file changed (a stat per sibling)."""
        changed = False
        for directory in self._peer_dirs:
            path = directory / LIVENESS_FILE
            try:
                mtime = path.stat().st_mtime
                cached = self._devices.get(directory)
                if cached is None or cached[0] != mtime:
                    self._devices[directory] = (mtime, *read_liveness(path))
                    changed = True
            except FileNotFoundError:
                continue  # a shard that has not written it yet
            except (OSError, ValueError, KeyError, TypeError) as exc:
                _log.warning("devices of the shard at %s unreadable: %s", directory, exc)
        if changed:
            merged = [pair for _, pairs, _ in self._devices.values() for pair in pairs]
            self._merged = (merged, {ref.key: (ref, state) for ref, state in merged})
        return self._merged[0]

    def unregistered(self) -> Iterator[Unregistered]:
        """Every shard's unplaced topics, most recently seen first (siblings' up to ~5 s old)."""
        self._sibling_devices()
        theirs = [e for _, _, entries in self._devices.values() for e in entries]
        both = [*super().unregistered(), *theirs]
        return iter(sorted(both, key=lambda e: e.last_seen, reverse=True))

    def _sibling_device(self, key: str) -> tuple[DeviceRef, DeviceState] | None:
        """A sibling's device by `DeviceRef.key`."""
        self._sibling_devices()
        return self._merged[1].get(key)

    def devices(
        self,
        communities: set[str] | None,
        building: str | None,
        model: str | None,
        status: Status | None,
        start: int,
        limit: int,
    ) -> tuple[list[DeviceRef], int | None]:
        """This shard's devices (cursor = its slot), then the siblings' (cursor = this shard's
        slot count + their position): a device that enrolls between two pages may repeat one."""
        own_slots = self._agent_ref.registry.slots
        found: list[DeviceRef] = []
        if start < own_slots:
            found, next_slot = super().devices(communities, building, model, status, start, limit)
            if next_slot is not None:
                return found, next_slot
        for position, (ref, state) in enumerate(self._sibling_devices()):
            if position < start - own_slots:
                continue
            if (
                (communities is not None and ref.community not in communities)
                or (building is not None and ref.building != building)
                or (model is not None and ref.model != model)
                or (status is not None and state.status is not status)
            ):
                continue
            if len(found) == limit:
                return found, own_slots + position
            found.append(ref)
        return found, None

    def device(self, device_id: str) -> DeviceRef | None:
        own = super().device(device_id)
        if own is not None:
            return own
        return next((r for r, _ in self._sibling_devices() if r.device_id == device_id), None)

    def device_details(self, device_id: str) -> DeviceDetails | None:
        return super().device_details(device_id) or self._agent_ref.whole_registry.details(
            device_id
        )

    def device_state(self, device: DeviceRef) -> DeviceState:
        own = self._agent_ref.registry.find(device.device_id)
        if own is not None and own.key == device.key:
            return super().device_state(own)
        theirs = self._sibling_device(device.key)
        return theirs[1] if theirs is not None else super().device_state(device)

    def _open_alerts(self) -> list[Alert]:
        """This shard's open alerts (its book) and each sibling's (its store)."""
        found = list(self._agent_ref.alerts.open_alerts())
        for _, store in self._peers():
            found += store.open_alerts()
        return found

    def open_alerts_of(self, device: DeviceRef) -> list[Alert]:
        return [
            a
            for a in self._open_alerts()
            if a.device_id == device.device_id and a.community == device.community
        ]

    def household_alerts(self, household: Household) -> list[Alert]:
        devices = set(household.device_ids) | {f"household:{household.unit}"}
        return [
            a
            for a in self._open_alerts()
            if a.community == household.community
            and a.device_id in devices
            and (a.building == household.building or not a.device_id.startswith("household:"))
        ]

    # -- households: the away flag is the owning shard's rule state -----------------------------

    async def set_away(
        self,
        community: str,
        building: str,
        unit: str,
        away: bool,
        until: datetime | None = None,
        reason: str | None = None,
    ) -> bool:
        """Set here (this shard's API answers is_away from its own flag) and on the shard that
        owns the building, whose absence and sign-of-life rules it holds back."""
        here = await super().set_away(community, building, unit, away, until, reason)
        peer = self._place_owner(community, building)
        if peer is None:
            return here
        body: dict[str, object] = {"away": away}
        if until is not None:
            body["until"] = until.isoformat()
        if reason is not None:
            body["reason"] = reason
        response = await self._send(
            peer, "PUT", f"/v1/households/{community}/{building}/{unit}/away", body
        )
        if response.status_code != 200:
            raise ShardUnavailable(
                f"the shard that owns {community}/{building} answered {response.status_code}"
            )
        return bool(response.json().get("away", here))

    def _place_owner(self, community: str, building: str) -> Path | None:
        """The sibling's data dir when a sibling owns the building; None: this shard.

        `run --shards N` gives local shard k the global index k * C + G of N * C (this gateway G
        of C, gateway/shards.py `plan`), and `peers` lists shards 1..N-1 in order."""
        shard = self._agent_ref.shard
        local_count = len(self._peer_dirs) + 1
        gateways = max(1, shard.count // local_count)
        for local, directory in enumerate(self._peer_dirs, start=1):
            if Shard(local * gateways + shard.index, shard.count).owns(community, building):
                return directory
        return None

    # -- operations: every shard's health, readiness and metrics on shard 0 ----------------------

    async def health(self) -> dict[str, Any]:
        """This shard's health plus a `shards` section: each sibling's own `/healthz` (its MQTT
        sessions, sinks, outbox, escalation), or `unreachable` while it restarts or hangs. A
        sibling that is not ok makes the gateway degraded: its buildings' alarms depend on it."""
        health = await super().health()
        answers = await asyncio.gather(
            *(self._sibling_json(p, "/healthz") for p in self._peer_dirs)
        )
        health["shards"] = {
            peer.name: answer for peer, answer in zip(self._peer_dirs, answers, strict=True)
        }
        return health

    async def readiness(self) -> list[str]:
        """What keeps any shard from being ready, each sibling's problems named by its shard."""
        problems = await super().readiness()
        answers = await asyncio.gather(*(self._sibling_json(p, "/readyz") for p in self._peer_dirs))
        for peer, answer in zip(self._peer_dirs, answers, strict=True):
            if answer.get("status") == "unreachable":
                problems.append(f"{peer.name}: {answer['error']}")
            else:
                problems.extend(f"{peer.name}: {p}" for p in answer.get("problems", []))
        return problems

    async def sibling_metrics(self) -> list[tuple[str, str | None]]:
        """Each sibling's Prometheus text by shard name; None for a shard not answering."""

        async def one(peer: Path) -> str | None:
            try:
                response = await self._send(peer, "GET", "/metrics", None, wait_s=HEALTH_TIMEOUT_S)
            except ShardUnavailable:
                return None
            return response.text if response.status_code == 200 else None

        texts = await asyncio.gather(*(one(p) for p in self._peer_dirs))
        return [(peer.name, text) for peer, text in zip(self._peer_dirs, texts, strict=True)]

    async def _sibling_json(self, peer: Path, path: str) -> dict[str, Any]:
        """A sibling's JSON answer to an operations route, or `unreachable` with why."""
        try:
            response = await self._send(peer, "GET", path, None, wait_s=HEALTH_TIMEOUT_S)
            answer: dict[str, Any] = response.json()
        except ShardUnavailable as exc:
            return {"status": "unreachable", "error": str(exc)}
        except ValueError:
            return {"status": "unreachable", "error": f"{peer.name} answered {path} without JSON"}
        return answer

    async def _send(
        self,
        peer: Path,
        method: str,
        path: str,
        body: dict[str, object] | None,
        wait_s: float = PEER_TIMEOUT_S,
    ) -> httpx.Response:
        """One request to a sibling's loopback API with the shared token (503 when it is down)."""
        try:
            url = (peer / API_URL_FILE).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ShardUnavailable(f"shard at {peer} has not started its API yet") from exc
        try:
            async with httpx.AsyncClient(timeout=wait_s) as client:
                return await client.request(
                    method,
                    f"{url}{path}",
                    json=body,
                    headers={"Authorization": f"Bearer {self._token}"},
                )
        except httpx.HTTPError as exc:
            _log.warning("shard at %s did not answer %s %s: %s", peer, method, path, exc)
            raise ShardUnavailable(f"the shard at {peer.name} is not answering") from exc

    def _owner(self, alert_id: str) -> Path | None:
        """The sibling's data dir when a sibling owns this alert; None: this shard (or nobody)."""
        if self._agent_ref.alert_store.get(alert_id) is not None:
            return None
        for directory, store in self._peers():
            if store.get(alert_id) is not None:
                return directory
        return None

    async def _forward(
        self, peer: Path, alert_id: str, action: str, body: dict[str, str | None]
    ) -> Alert:
        try:
            url = (peer / API_URL_FILE).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ShardUnavailable(f"shard at {peer} has not started its API yet") from exc
        try:
            async with httpx.AsyncClient(timeout=PEER_TIMEOUT_S) as client:
                response = await client.post(
                    f"{url}/v1/alerts/{alert_id}/{action}",
                    json={k: v for k, v in body.items() if v is not None},
                    headers={"Authorization": f"Bearer {self._token}"},
                )
        except httpx.HTTPError as exc:
            _log.warning("shard at %s did not answer %s of %s: %s", peer, action, alert_id, exc)
            raise ShardUnavailable(
                f"the shard that owns alert {alert_id} is not answering"
            ) from exc
        if response.status_code == 404:
            raise AlertNotFound(alert_id)
        if response.status_code == 409:
            raise AlertTransitionError(response.json().get("detail", "not allowed"))
        if response.status_code != 200:
            raise ShardUnavailable(
                f"the shard that owns alert {alert_id} answered {response.status_code}"
            )
        return Alert.model_validate(response.json())
