"""The desk of shard 0 under `run --shards N`: one API over every shard's alerts.

Each shard keeps its own alert store (SQLite, WAL) in its data dir. Shard 0's API reads its
siblings' stores directly (WAL lets a reader beside the writing process) and merges their pages
by the same keyset the store pages by (opening time, id; newest first), so a cursor from a merged
page is valid for every store. An action (acknowledge, resolve, assign) on a sibling's alert goes
to the shard that owns it, through that shard's own API on loopback (gateway/shard_link.py): one
process decides each alert's lifecycle, so two shards never race on one alert. What lives only in
a sibling's process or outbox is asked of it the same way: households' learned rhythm of the
shard that owns the building, every shard's dead letters, and (gateway/shard_readings.py) a
building's embedded readings.
"""

from __future__ import annotations

import asyncio
import base64
import heapq
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

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
from edge.model import (
    Alert,
    AlertEvent,
    AlertStatus,
    DeadLetter,
    DeviceRef,
    Severity,
    epoch_ms,
)
from edge.rules import Day, RhythmView
from gateway.api.care import HouseholdRhythmView
from gateway.api.errors import error_response
from gateway.api.schemas import DeadLetterView
from gateway.dead_letter_pages import LetterQuery, letter_key, letters_page
from gateway.metrics import merge_shards
from gateway.shard_link import HEALTH_TIMEOUT_S, ShardLink, ShardUnavailable
from gateway.shard_sync import LIVENESS_FILE, read_liveness
from gateway.shards import MAX_SHARDS

_log = logging.getLogger(__name__)


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


class ShardDesk(Desk):
    """A desk over this shard's agent and the alert stores of its sibling shards."""

    def __init__(self, agent: Agent, peers: list[Path], token: str) -> None:
        """`peers`: the sibling shards' data dirs; `token`: the bootstrap token they share."""
        super().__init__(agent)
        self._agent_ref = agent
        self._peer_dirs = list(peers)
        self._stores: dict[Path, AlertStore] = {}
        self._link = ShardLink(token)
        # the siblings' devices as their last liveness.json said: (mtime, devices, unregistered
        # topics) per peer
        self._devices: dict[
            Path, tuple[float, list[tuple[DeviceRef, DeviceState]], list[Unregistered]]
        ] = {}
        self._merged: tuple[
            list[tuple[DeviceRef, DeviceState]], dict[str, tuple[DeviceRef, DeviceState]]
        ] = ([], {})

    async def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()
        await self._link.close()

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
        response = await self._link.send(peer, "POST", f"/v1/incidents/{incident_id}/{verb}", body)
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

    # -- households: the away flag, signs of life and rhythm are the owning shard's rule state --

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
        response = await self._link.send(
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

    async def rhythm_of(self, community: str, building: str, unit: str) -> list[RhythmView]:
        """What the sign-of-life rules of the shard that owns the building have learned of the
        household (a sibling's: one loopback request; 503 while it does not answer)."""
        peer = self._place_owner(community, building)
        if peer is None:
            return await super().rhythm_of(community, building, unit)
        response = await self._link.send(
            peer, "GET", f"/v1/households/{community}/{building}/{unit}/rhythm"
        )
        if response.status_code != 200:
            raise ShardUnavailable(
                f"{peer.name}, which owns {community}/{building}, answered {response.status_code}",
                shard=peer.name,
            )
        return [
            RhythmView(
                rule=r.rule,
                days_learned=r.days_learned,
                histogram=r.histogram,
                usual_share=r.usual_share,
                own_day=None if r.own_day is None else Day(r.own_day.start, r.own_day.end),
                watched=r.watched,
                last_sign=r.last_sign,
                raised=r.raised,
            )
            for r in HouseholdRhythmView.model_validate(response.json()).rules
        ]

    async def sign_of_life(self, community: str, building: str, unit: str) -> int:
        """Recorded by the shard that owns the building, whose rules watch the household (the
        caller is audited here; the owning shard records the bootstrap token)."""
        peer = self._place_owner(community, building)
        if peer is None:
            return await super().sign_of_life(community, building, unit)
        response = await self._link.send(
            peer, "POST", f"/v1/households/{community}/{building}/{unit}/signs", {}
        )
        if response.status_code != 200:
            raise ShardUnavailable(
                f"{peer.name}, which owns {community}/{building}, answered {response.status_code}",
                shard=peer.name,
            )
        return int(response.json()["resolved"])

    # -- embedded readings: the owning shard's store (gateway/shard_readings.py) ----------------

    @property
    def link(self) -> ShardLink:
        """The loopback link to the siblings' APIs (one pooled client for every caller)."""
        return self._link

    def shards_holding(self, device_id: str | None) -> list[Path | None]:
        """The shards whose stores hold a device's readings: the one that owns its building
        (None: this shard); every shard (this one first) for no device or an unknown one."""
        ref = self.device(device_id) if device_id is not None else None
        if ref is None:
            return [None, *self._peer_dirs]
        return [self._place_owner(ref.community, ref.building)]

    # -- dead letters: every shard's, newest received first --------------------------------------

    async def dead_letters(self, limit: int, before_id: int | None) -> list[DeadLetter]:
        """Every shard's dead letters, newest received first (one loopback request per sibling).

        An id here is the shard's own id * MAX_SHARDS + the shard's local index, so it names its
        shard: the next page continues below it in that shard and, in the others, below the
        moment that letter was received. A sibling that does not answer is ShardUnavailable (503):
        a page without its letters would be continued past them.
        """
        shards = len(self._peer_dirs) + 1
        if before_id is None:
            asks = [LetterQuery(limit)] * shards
        else:
            own_id, cursor_shard = divmod(before_id, MAX_SHARDS)
            if own_id < 1 or cursor_shard >= shards:
                return []  # no letter of this gateway's shards has that id
            head = await self._letters(cursor_shard, LetterQuery(1, own_id + 1))
            if not head:
                return []  # nothing older in that shard, and the letter is gone: the end
            # the cursor's letter; if retention took it since, the next older one of its shard
            # (what other shards received between the two went with the same retention, mostly)
            moment = head[0].received_at
            asks = [
                LetterQuery(limit, own_id)
                if k == cursor_shard
                else LetterQuery(limit, own_id + (k < cursor_shard), moment)
                for k in range(shards)
            ]
        pages = await asyncio.gather(*(self._letters(k, ask) for k, ask in enumerate(asks)))
        return list(heapq.merge(*pages, key=letter_key, reverse=True))[:limit]

    async def _letters(self, local: int, query: LetterQuery) -> list[DeadLetter]:
        """One shard's page (gateway/dead_letter_pages.py), its ids made this desk's."""
        if local == 0:
            found = await letters_page(super().dead_letters, query)
            return [d.model_copy(update={"id": (d.id or 0) * MAX_SHARDS}) for d in found]
        peer = self._peer_dirs[local - 1]
        response = await self._link.send(peer, "GET", "/v1/dead-letters", params=query.params())
        if response.status_code != 200:
            raise ShardUnavailable(
                f"{peer.name} answered {response.status_code} for dead letters", shard=peer.name
            )
        # the sibling masked names and phones already; the route masks the masked text again
        return [
            DeadLetter(
                id=view.id * MAX_SHARDS + local,
                topic=view.topic,
                payload=base64.b64decode(view.payload_base64),
                cause=view.cause,
                detail=view.detail,
                received_at=view.received_at,
            )
            for view in map(DeadLetterView.model_validate, response.json())
        ]

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
                response = await self._link.send(peer, "GET", "/metrics", wait_s=HEALTH_TIMEOUT_S)
            except ShardUnavailable:
                return None
            return response.text if response.status_code == 200 else None

        texts = await asyncio.gather(*(one(p) for p in self._peer_dirs))
        return [(peer.name, text) for peer, text in zip(self._peer_dirs, texts, strict=True)]

    async def _sibling_json(self, peer: Path, path: str) -> dict[str, Any]:
        """A sibling's JSON answer to an operations route, or `unreachable` with why."""
        try:
            response = await self._link.send(peer, "GET", path, wait_s=HEALTH_TIMEOUT_S)
            answer: dict[str, Any] = response.json()
        except ShardUnavailable as exc:
            return {"status": "unreachable", "error": str(exc)}
        except ValueError:
            return {"status": "unreachable", "error": f"{peer.name} answered {path} without JSON"}
        return answer

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
        response = await self._link.send(
            peer,
            "POST",
            f"/v1/alerts/{alert_id}/{action}",
            {k: v for k, v in body.items() if v is not None},
        )
        if response.status_code == 404:
            raise AlertNotFound(alert_id)
        if response.status_code == 409:
            raise AlertTransitionError(response.json().get("detail", "not allowed"))
        if response.status_code != 200:
            raise ShardUnavailable(
                f"{peer.name}, which owns alert {alert_id}, answered {response.status_code}",
                shard=peer.name,
            )
        return Alert.model_validate(response.json())
