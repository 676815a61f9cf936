"""The alert API in-process over a real agent: auth, listing, pages, lifecycle, restart, operations.

Messages go through the agent's own pipeline, outbox and forwarders, exactly as ingest drives
them; only the broker is absent (the agent is entered, `run()` is never started).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry
from edge.ingest import parse_mqtt_url
from edge.model import AlertEvent, RawMessage
from edge.sinks import ReadingQuery, ReadingStore
from gateway.api import create_app
from gateway.dead_letter_pages import LetterQuery, letters_page
from gateway.reading_source import ReadingAnswer, ReadingSource
from tests.in_process import handle_and_deliver

TOKEN = "token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROFILES = ProfileRegistry.load(default_profile_dir())

SOS = b'{"action":"emergency","battery":80}'
SOS_LOW_BATTERY = b'{"battery": 15}'
SMOKE = b'{"smoke": true, "test": false}'
SMOKE_CLEARED = b'{"smoke": false, "test": false}'


def _sos(device_id: str, community: str = "c1") -> str:
    return f"ce/{community}/b1/tuya-sos-button/{device_id}"


def _smoke(device_id: str, community: str = "c2") -> str:
    return f"ce/{community}/b1/zigbee-ias-smoke/{device_id}"


def _clock() -> FakeClock:
    # Anchored at the real time: the reading store prunes by wall clock, a fixed date would age out.
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@dataclass
class _Gateway:
    agent: Agent
    clock: FakeClock
    client: httpx.AsyncClient

    async def publish(self, topic: str, payload: bytes) -> list[AlertEvent]:
        """One message through the pipeline, committed and delivered as ingest does it."""
        self.clock.advance(1)  # one second apart: newest-first order is well defined
        raw = RawMessage(topic=topic, payload=payload, received_at=self.clock.now())
        return (await handle_and_deliver(self.agent, raw)).events

    async def open_alert(self, topic: str, payload: bytes) -> str:
        """Publish a message that opens exactly one alert; returns its id."""
        events = await self.publish(topic, payload)
        assert [e.kind for e in events] == ["opened"]
        return events[0].alert.id

    async def get(self, url: str, **params: Any) -> httpx.Response:
        return await self.client.get(url, params=params, headers=AUTH)

    async def post(self, url: str, json: dict[str, Any] | None = None) -> httpx.Response:
        return await self.client.post(url, json=json, headers=AUTH)

    async def alert_ids(self, **params: Any) -> list[str]:
        response = await self.get("/v1/alerts", limit=500, **params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]


@asynccontextmanager
async def _gateway(data_dir: Path, clock: FakeClock) -> AsyncIterator[_Gateway]:
    readings = ReadingStore(data_dir / "readings.db")
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="test-gateway", data_dir=data_dir
    )
    agent = Agent(config, PROFILES, DeviceRegistry(), [readings], clock)
    async with agent:
        app = create_app(agent, TOKEN, readings)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield _Gateway(agent, clock, client)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[_Gateway]:
    async with _gateway(tmp_path / "data", _clock()) as gw:
        yield gw


# -- authentication ------------------------------------------------------------------------------

V1_ROUTES = [
    ("GET", "/v1/alerts"),
    ("GET", "/v1/alerts/stream"),
    ("GET", "/v1/alerts/some-id"),
    ("POST", "/v1/alerts/some-id/ack"),
    ("POST", "/v1/alerts/some-id/resolve"),
    ("POST", "/v1/alerts/some-id/assign"),
    ("GET", "/v1/incidents"),
    ("GET", "/v1/incidents/some-id"),
    ("POST", "/v1/incidents/some-id/ack"),
    ("POST", "/v1/incidents/some-id/resolve"),
    ("GET", "/v1/silences"),
    ("POST", "/v1/silences"),
    ("DELETE", "/v1/silences/some-id"),
    ("GET", "/v1/summary"),
    ("GET", "/v1/readings"),
    ("GET", "/v1/dead-letters"),
    ("GET", "/v1/devices"),
    ("GET", "/v1/devices/unregistered"),
    ("GET", "/v1/devices/some-id"),
]


@pytest.mark.parametrize(("method", "url"), V1_ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {base64.b64encode(TOKEN.encode()).decode()}"},
        {"Authorization": TOKEN},
    ],
    ids=["none", "wrong", "longer", "basic-scheme", "no-scheme"],
)
async def test_v1_routes_refuse_a_missing_or_wrong_token(
    gateway: _Gateway, method: str, url: str, headers: dict[str, str]
) -> None:
    response = await gateway.client.request(method, url, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["message"]


# -- listing -------------------------------------------------------------------------------------


async def test_alerts_are_listed_newest_first(gateway: _Gateway) -> None:
    first = await gateway.open_alert(_sos("sos-1"), SOS)
    second = await gateway.open_alert(_smoke("smk-1"), SMOKE)
    third = await gateway.open_alert(_sos("sos-2"), SOS)

    response = await gateway.get("/v1/alerts")

    assert response.status_code == 200
    body = response.json()
    assert [a["id"] for a in body["items"]] == [third, second, first]
    assert body["next_cursor"] is None
    newest = body["items"][0]
    assert newest["status"] == "active"
    assert newest["severity"] == "critical"
    assert newest["rule"] == "sos"
    assert (newest["device_id"], newest["community"], newest["building"]) == ("sos-2", "c1", "b1")


async def test_a_repeated_condition_updates_the_open_alert(gateway: _Gateway) -> None:
    alert_id = await gateway.open_alert(_sos("sos-1"), SOS)

    events = await gateway.publish(_sos("sos-1"), SOS)

    assert [(e.kind, e.alert.id) for e in events] == [("repeated", alert_id)]
    assert await gateway.alert_ids() == [alert_id]
    response = await gateway.get(f"/v1/alerts/{alert_id}")
    assert response.json()["alert"]["count"] == 2


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("community=c1", ["sos-1"]),
        ("community=c1&community=c2", ["smk-1", "sos-1"]),
        ("community=nowhere", []),
        ("status=acknowledged", ["sos-1"]),
        ("status=active", ["sos-3", "smk-1"]),
        ("status=resolved", []),
        ("severity=minor", ["sos-3"]),
        ("severity=critical", ["smk-1", "sos-1"]),
        ("severity=critical&community=c2", ["smk-1"]),
        ("severity=critical&status=active", ["smk-1"]),
    ],
)
async def test_filters_by_community_status_and_severity(
    gateway: _Gateway, query: str, expected: list[str]
) -> None:
    acked = await gateway.open_alert(_sos("sos-1", "c1"), SOS)
    await gateway.open_alert(_smoke("smk-1", "c2"), SMOKE)
    await gateway.open_alert(_sos("sos-3", "c3"), SOS_LOW_BATTERY)
    assert (await gateway.post(f"/v1/alerts/{acked}/ack")).status_code == 200

    response = await gateway.client.get(f"/v1/alerts?{query}", headers=AUTH)

    assert response.status_code == 200
    assert [a["device_id"] for a in response.json()["items"]] == expected


@pytest.mark.parametrize(
    "query",
    [
        "status=bogus",
        "severity=bogus",
        "status=ACTIVE",
        "limit=0",
        "limit=501",
        "limit=ten",
    ],
)
async def test_invalid_filters_are_422(gateway: _Gateway, query: str) -> None:
    response = await gateway.client.get(f"/v1/alerts?{query}", headers=AUTH)
    assert response.status_code == 422


# -- pagination ----------------------------------------------------------------------------------


async def _all_pages(gateway: _Gateway, limit: int) -> tuple[list[str], int]:
    ids: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = await gateway.get("/v1/alerts", **params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        assert len(body["items"]) <= limit
        ids.extend(a["id"] for a in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, pages
        assert pages < 100, "pagination does not end"


@pytest.mark.parametrize(("limit", "pages"), [(10, 3), (5, 5), (25, 1), (24, 2), (500, 1)])
async def test_cursor_pages_return_every_alert_once_in_order(
    gateway: _Gateway, limit: int, pages: int
) -> None:
    opened = [await gateway.open_alert(_sos(f"sos-{i}"), SOS) for i in range(25)]

    ids, count = await _all_pages(gateway, limit)

    assert ids == opened[::-1]
    assert count == pages


async def test_pages_are_stable_when_alerts_open_while_paging(gateway: _Gateway) -> None:
    opened = [await gateway.open_alert(_sos(f"sos-{i}"), SOS) for i in range(25)]
    first = (await gateway.get("/v1/alerts", limit=10)).json()

    newer = await gateway.open_alert(_smoke("smk-late"), SMOKE)
    rest = (await gateway.get("/v1/alerts", limit=20, cursor=first["next_cursor"])).json()

    seen = [a["id"] for a in first["items"]] + [a["id"] for a in rest["items"]]
    assert seen == opened[::-1]
    assert rest["next_cursor"] is None
    assert newer not in seen


def _b64(text: bytes) -> str:
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "x",
        "!!!!",
        _b64(b"abc:some-id"),  # not a timestamp
        _b64(b"1700000000000:"),  # no id
        _b64(b"1700000000000"),  # no separator
        _b64(b"\xff\xfe:id"),  # not UTF-8
        _b64(b"99999999999999999999:some-id"),  # beyond SQLite's INTEGER
        _b64(b"-5:some-id"),  # before the epoch
    ],
)
async def test_a_tampered_cursor_is_400(gateway: _Gateway, cursor: str) -> None:
    await gateway.open_alert(_sos("sos-1"), SOS)

    response = await gateway.get("/v1/alerts", cursor=cursor)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


# -- one alert and its lifecycle -----------------------------------------------------------------


async def test_one_alert_comes_with_its_history(gateway: _Gateway) -> None:
    alert_id = await gateway.open_alert(_sos("sos-1"), SOS)
    await gateway.post(f"/v1/alerts/{alert_id}/ack", {"note": "on my way"})

    response = await gateway.get(f"/v1/alerts/{alert_id}")

    assert response.status_code == 200
    body = response.json()
    assert body["alert"]["id"] == alert_id
    assert body["alert"]["status"] == "acknowledged"
    assert body["alert"]["note"] == "on my way"
    history = body["history"]
    assert [(e["kind"], e["actor"]) for e in history] == [
        ("opened", "rule"),
        ("acknowledged", "api-token"),
    ]
    assert history[1]["note"] == "on my way"
    assert all(e["alert"]["id"] == alert_id for e in history)


async def test_acknowledge_then_resolve_each_only_once(gateway: _Gateway) -> None:
    alert_id = await gateway.open_alert(_sos("sos-1"), SOS)

    ack = await gateway.post(f"/v1/alerts/{alert_id}/ack")
    assert ack.status_code == 200
    assert ack.json()["status"] == "acknowledged"
    assert ack.json()["acknowledged_by"] == "api-token"
    assert ack.json()["acknowledged_at"] is not None

    again = await gateway.post(f"/v1/alerts/{alert_id}/ack")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"

    resolve = await gateway.post(f"/v1/alerts/{alert_id}/resolve", {"note": "false alarm"})
    assert resolve.status_code == 200
    assert resolve.json()["status"] == "resolved"
    assert resolve.json()["resolved_by"] == "api-token"
    assert resolve.json()["note"] == "false alarm"

    for action in ("resolve", "ack"):
        late = await gateway.post(f"/v1/alerts/{alert_id}/{action}")
        assert late.status_code == 409
        assert late.json()["error"]["code"] == "conflict"

    stored = (await gateway.get(f"/v1/alerts/{alert_id}")).json()
    assert stored["alert"]["status"] == "resolved"
    assert [e["kind"] for e in stored["history"]] == ["opened", "acknowledged", "resolved"]
    assert await gateway.alert_ids(status="resolved") == [alert_id]


async def test_an_active_alert_can_be_resolved_without_acknowledging(gateway: _Gateway) -> None:
    alert_id = await gateway.open_alert(_sos("sos-1"), SOS)

    response = await gateway.post(f"/v1/alerts/{alert_id}/resolve")

    assert response.status_code == 200
    assert response.json()["status"] == "resolved"
    assert response.json()["acknowledged_by"] is None


async def test_an_action_body_with_unknown_keys_is_422(gateway: _Gateway) -> None:
    alert_id = await gateway.open_alert(_sos("sos-1"), SOS)

    response = await gateway.post(f"/v1/alerts/{alert_id}/ack", {"note": "x", "by": "someone"})

    assert response.status_code == 422
    assert (await gateway.get(f"/v1/alerts/{alert_id}")).json()["alert"]["status"] == "active"


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/v1/alerts/no-such-alert"),
        ("POST", "/v1/alerts/no-such-alert/ack"),
        ("POST", "/v1/alerts/no-such-alert/resolve"),
    ],
)
async def test_an_unknown_alert_is_404(gateway: _Gateway, method: str, url: str) -> None:
    await gateway.open_alert(_sos("sos-1"), SOS)

    response = await gateway.client.request(method, url, headers=AUTH)

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_the_device_clearing_the_condition_resolves_the_alert(gateway: _Gateway) -> None:
    alert_id = await gateway.open_alert(_smoke("smk-1"), SMOKE)

    events = await gateway.publish(_smoke("smk-1"), SMOKE_CLEARED)

    assert [e.kind for e in events] == ["resolved"]
    body = (await gateway.get(f"/v1/alerts/{alert_id}")).json()
    assert body["alert"]["status"] == "resolved"
    assert body["alert"]["resolved_by"] == "device"
    assert [(e["kind"], e["actor"]) for e in body["history"]] == [
        ("opened", "rule"),
        ("resolved", "device"),
    ]
    assert (await gateway.post(f"/v1/alerts/{alert_id}/ack")).status_code == 409
    # smoke again after the clear is a new alert, not the old one reopened
    reopened = await gateway.open_alert(_smoke("smk-1"), SMOKE)
    assert reopened != alert_id
    assert await gateway.alert_ids() == [reopened, alert_id]


async def test_alerts_and_their_state_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    clock = _clock()
    async with _gateway(data_dir, clock) as before:
        acknowledged = await before.open_alert(_sos("sos-1"), SOS)
        active = await before.open_alert(_sos("sos-2"), SOS)
        resolved = await before.open_alert(_smoke("smk-1"), SMOKE)
        assert (await before.post(f"/v1/alerts/{acknowledged}/ack")).status_code == 200
        assert (await before.post(f"/v1/alerts/{resolved}/resolve")).status_code == 200
        listed_before = (await before.get("/v1/alerts")).json()["items"]

    async with _gateway(data_dir, clock) as after:
        assert (await after.get("/v1/alerts")).json()["items"] == listed_before
        assert (await after.get(f"/v1/alerts/{acknowledged}")).json()["alert"][
            "status"
        ] == "acknowledged"
        assert len(after.agent.alerts) == 2

        # the open alert is still the one the device's next message speaks of
        events = await after.publish(_sos("sos-2"), SOS)
        assert [(e.kind, e.alert.id) for e in events] == [("repeated", active)]

        ack = await after.post(f"/v1/alerts/{active}/ack")
        assert ack.status_code == 200
        assert ack.json()["status"] == "acknowledged"
        assert ack.json()["count"] == 2
        assert (await after.post(f"/v1/alerts/{acknowledged}/ack")).status_code == 409
        assert (await after.post(f"/v1/alerts/{acknowledged}/resolve")).status_code == 200
        assert (await after.post(f"/v1/alerts/{resolved}/ack")).status_code == 409
        history = (await after.get(f"/v1/alerts/{active}")).json()["history"]
        assert [e["kind"] for e in history] == ["opened", "repeated", "acknowledged"]


# -- readings, dead letters, operations ----------------------------------------------------------


async def test_readings_are_listed_newest_first_and_filtered_by_device(gateway: _Gateway) -> None:
    await gateway.publish(_sos("sos-1"), SOS)
    await gateway.publish(_sos("sos-2"), SOS)
    await gateway.publish(_sos("sos-1"), SOS_LOW_BATTERY)
    await gateway.publish(_smoke("smk-1"), SMOKE_CLEARED)

    everything = await gateway.get("/v1/readings")
    sos_1 = await gateway.get("/v1/readings", device_id="sos-1")

    assert everything.status_code == 200
    assert [r["device_id"] for r in everything.json()["items"]] == [
        "smk-1",
        "sos-1",
        "sos-2",
        "sos-1",
    ]
    items = sos_1.json()["items"]
    assert [r["fields"] for r in items] == [
        {"battery": 15.0},
        {"action": "emergency", "battery": 80.0},
    ]
    assert items[0]["at"] > items[1]["at"]
    assert {(r["category"], r["community"], r["building"], r["model"]) for r in items} == {
        ("sos", "c1", "b1", "tuya-sos-button")
    }
    smoke = (await gateway.get("/v1/readings", device_id="smk-1")).json()["items"]
    assert smoke[0]["fields"] == {"smoke": False, "test": False}


class _Recorded(ReadingSource):
    """The gateway's own store, keeping each query the route asked of it."""

    def __init__(self, store: ReadingStore) -> None:
        super().__init__(store)
        self.asked: list[ReadingQuery] = []

    async def query(self, query: ReadingQuery) -> ReadingAnswer:
        self.asked.append(query)
        return await super().query(query)


async def test_a_query_sent_as_its_params_reaches_the_store_as_the_same_query(
    gateway: _Gateway,
) -> None:
    # how shard 0 asks a sibling shard for readings (gateway/shard_readings.py)
    app = gateway.client._transport.app  # type: ignore[attr-defined]
    recorded = app.state.readings = _Recorded(app.state.readings.store)
    await gateway.publish(_sos("sos-1"), SOS)
    since = datetime(2026, 12, 1, 8, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    queries = [
        ReadingQuery(),
        ReadingQuery(device_id="sos-1", limit=1),
        ReadingQuery(
            device_id="sos-1",
            communities=("c1", "c2"),
            category="sos",
            since=since,
            until=datetime.now(UTC) + timedelta(days=1),
            limit=5000,
        ),
        ReadingQuery(communities=("c1",), since=since),
    ]

    found = [(await gateway.get("/v1/readings", **q.params())).json()["items"] for q in queries]

    assert recorded.asked == queries
    assert [len(items) for items in found] == [1, 1, 1, 1]


def test_a_query_of_no_community_is_never_sent_as_a_query_of_every_community() -> None:
    # an empty list vanishes from a URL: a sibling shard would read every community
    with pytest.raises(ValueError, match="no community"):
        ReadingQuery(communities=()).params()


async def test_a_payload_that_is_not_json_is_listed_as_a_dead_letter(gateway: _Gateway) -> None:
    await gateway.publish(_sos("sos-1"), SOS)
    assert await gateway.publish(_sos("sos-9"), b"not json {") == []

    response = await gateway.get("/v1/dead-letters")

    assert response.status_code == 200
    letters = response.json()
    assert len(letters) == 1
    assert letters[0]["topic"] == _sos("sos-9")
    assert letters[0]["cause"] == "not_json"
    assert letters[0]["detail"]
    assert base64.b64decode(letters[0]["payload_base64"]) == b"not json {"
    # a dead letter is not a reading
    assert (await gateway.get("/v1/readings", device_id="sos-9")).json()["items"] == []


async def test_a_page_of_dead_letters_asked_by_its_params_is_the_page_read_in_process(
    gateway: _Gateway,
) -> None:
    # how shard 0 asks a sibling shard for a page (gateway/shard_desk.py)
    for n in range(6):
        await gateway.publish(_sos(f"sos-{n}"), b"not json {")
    newest = await gateway.agent.outbox.dead_letters(limit=6)
    moment = newest[2].received_at
    queries = [
        LetterQuery(2),
        LetterQuery(3, newest[1].id),
        LetterQuery(10, newest[2].id, moment),
        LetterQuery(10, None, moment),
    ]

    listed = [
        [d["id"] for d in (await gateway.get("/v1/dead-letters", **q.params())).json()]
        for q in queries
    ]

    read = [
        [d.id for d in await letters_page(gateway.agent.outbox.dead_letters, q)] for q in queries
    ]
    assert listed == read
    assert [len(ids) for ids in listed] == [2, 3, 3, 4]


async def test_healthz_needs_no_token_and_says_degraded_without_a_broker(
    gateway: _Gateway,
) -> None:
    await gateway.open_alert(_sos("sos-1"), SOS)

    response = await gateway.client.get("/healthz")

    # #20 finding 7: without a token it named the broker user, client ids, sinks' hosts
    assert response.status_code == 200
    assert response.json() == {"status": "degraded"}
    response = await gateway.client.get("/healthz", headers=AUTH)  # an admin: the details
    body = response.json()
    assert body["status"] == "degraded"
    assert body["mqtt"]["connected"] is False
    assert body["mqtt"]["broker"] == "mqtt://127.0.0.1:1"
    assert body["open_alerts"] == 1
    assert set(body["sinks"]) == {"alert-store", "local-readings"}
    assert all(s["ok"] and s["backlog"] == 0 for s in body["sinks"].values())


async def test_readyz_needs_no_token_and_is_503_without_a_broker(gateway: _Gateway) -> None:
    response = await gateway.client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["ready"] is False
    assert any("not connected" in problem for problem in body["problems"])


async def test_metrics_are_prometheus_text(gateway: _Gateway) -> None:
    await gateway.open_alert(_sos("sos-1"), SOS)

    response = await gateway.client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert "# TYPE community_edge_outbox_depth gauge" in lines
    assert 'community_edge_outbox_depth{lane="events",sink="alert-store"} 0' in lines
    assert 'community_edge_outbox_depth{lane="readings",sink="local-readings"} 0' in lines
    assert "community_edge_open_alerts 1" in lines
    assert "community_edge_readings_total 1" in lines


@pytest.mark.parametrize("url", ["/docs", "/openapi.json"])
async def test_the_api_documents_itself_without_a_token(gateway: _Gateway, url: str) -> None:
    response = await gateway.client.get(url)

    assert response.status_code == 200


async def test_the_openapi_schema_lists_every_route(gateway: _Gateway) -> None:
    paths = (await gateway.client.get("/openapi.json")).json()["paths"]

    assert set(paths) >= {
        "/healthz",
        "/metrics",
        "/v1/alerts",
        "/v1/alerts/stream",
        "/v1/alerts/{alert_id}",
        "/v1/alerts/{alert_id}/ack",
        "/v1/alerts/{alert_id}/resolve",
        "/v1/readings",
        "/v1/dead-letters",
    }


async def test_healthz_details_are_for_admins_only(gateway: _Gateway, tmp_path: Path) -> None:
    from gateway.auth import Authenticator
    from gateway.tokens import TokenStore

    tokens = TokenStore(tmp_path / "tokens.db")
    app = gateway.client._transport.app  # type: ignore[attr-defined]
    app.state.authenticator = Authenticator(TOKEN, tokens)
    _, platform = tokens.create("platform", ["*"])
    _, scoped_admin = tokens.create("admin", ["c1"])

    as_platform = await gateway.client.get(
        "/healthz", headers={"Authorization": f"Bearer {platform}"}
    )
    as_admin = await gateway.client.get(
        "/healthz", headers={"Authorization": f"Bearer {scoped_admin}"}
    )
    wrong = await gateway.client.get("/healthz", headers={"Authorization": "Bearer wrong"})

    assert as_platform.json() == {"status": "degraded"}
    assert "mqtt" in as_admin.json()
    assert wrong.status_code == 401
