"""The central alert API in-process (httpx.ASGITransport) over a real store and real token and
audit files: ingest, roles, tenant scope, masking, summaries, CSV export, limits."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from edge.model import AlertEvent, AlertEventKind
from gateway.audit import AuditLog, open_audit
from gateway.central.api import create_central_app
from gateway.central.server import open_store
from gateway.central.store import CentralStore
from gateway.tokens import TokenStore, open_tokens
from tests.central_factories import moved, opened


@dataclass
class Central:
    client: httpx.AsyncClient
    store: CentralStore
    tokens: TokenStore
    audit: AuditLog
    token: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token[who]}"}

    async def post(self, who: str, events: list[AlertEvent]) -> httpx.Response:
        body = {"events": [e.model_dump(mode="json") for e in events]}
        return await self.client.post("/v1/alert-events", json=body, headers=self.auth(who))

    async def get(self, who: str, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.auth(who))


_ROLES = {
    "agent_a": ("edge_agent", ["A"]),
    "agent_b": ("edge_agent", ["B"]),
    "duty_a": ("duty_officer", ["A"]),
    "manager_b": ("property_manager", ["B"]),
    "platform": ("platform", ["*"]),
    "platform_a": ("platform", ["A"]),
}


@pytest.fixture(params=["sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'central.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def parts(tmp_path: Path, store_url: str) -> Iterator[tuple[CentralStore, TokenStore, AuditLog]]:
    store = open_store(store_url)
    tokens = open_tokens(tmp_path / "central")
    audit = open_audit(tmp_path / "central")
    yield store, tokens, audit
    store.close()
    tokens.close()
    audit.close()


@pytest.fixture
async def central(parts: tuple[CentralStore, TokenStore, AuditLog]) -> AsyncIterator[Central]:
    store, tokens, audit = parts
    token = {who: tokens.create(role, scope, who)[1] for who, (role, scope) in _ROLES.items()}
    app = create_central_app(store, tokens, audit)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://central") as client:
        yield Central(client, store, tokens, audit, token)


def _refusals(central: Central) -> list[tuple[str | None, str, str]]:
    return [
        (r.community, r.object, r.action)
        for r in central.audit.query(limit=1000)
        if r.result == "refused"
    ]


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_batch_posted_twice_is_stored_once(central: Central) -> None:
    batch = [opened(n, "A") for n in range(5)]
    first = await central.post("agent_a", batch)
    again = await central.post("agent_a", batch)
    assert (first.status_code, first.json()) == (200, {"stored": 5, "duplicates": 0})
    assert (again.status_code, again.json()) == (200, {"stored": 0, "duplicates": 5})
    listed = (await central.get("duty_a", "/v1/alerts")).json()
    assert sorted(a["id"] for a in listed["items"]) == [f"A-{n}" for n in range(5)]
    assert central.store.count_events() == 5


async def test_an_agent_posting_for_another_community_is_refused_whole(central: Central) -> None:
    refused = await central.post("agent_a", [opened(1, "A"), opened(2, "B"), opened(3, "C")])
    assert refused.status_code == 403
    assert refused.json() == {
        "error": {
            "code": "forbidden",
            "message": "events of communities outside this token: B, C",
        }
    }
    assert central.store.count_events() == 0
    assert _refusals(central) == [
        ("C", "alert-events", "post_events"),
        ("B", "alert-events", "post_events"),
    ]


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_gateway_cannot_rewrite_another_communitys_alert(central: Central) -> None:
    south = opened(1, "B")
    assert (await central.post("agent_b", [south])).status_code == 200
    # north's gateway claims south's alert as its own, resolved later: the attack of #20
    forged = moved(south, AlertEventKind.RESOLVED, 60)
    forged = forged.model_copy(
        update={"id": "evt-forged", "alert": forged.alert.model_copy(update={"community": "A"})}
    )
    refused = await central.post("agent_a", [opened(7, "A"), forged])
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "code": "forbidden",
        "message": "events for alerts that another community or gateway reported: B-1",
    }
    # nothing of the batch is stored, south's alert is as south's gateway left it
    assert central.store.count_events() == 1
    seen = (await central.get("manager_b", "/v1/alerts/B-1")).json()
    assert (seen["alert"]["community"], seen["alert"]["status"]) == ("B", "active")
    assert [e["id"] for e in seen["history"]] == [south.id]
    active = (await central.get("manager_b", "/v1/alerts", status="active")).json()["items"]
    assert [a["id"] for a in active] == ["B-1"]
    assert ("B", "alert:B-1", "post_events") in _refusals(central)


async def test_a_second_gateway_of_the_same_community_cannot_rewrite_the_firsts(
    central: Central,
) -> None:
    other_gateway = central.tokens.create("edge_agent", ["B"], "agent_b2")[1]
    central.token["agent_b2"] = other_gateway
    first = opened(1, "B")
    assert (await central.post("agent_b", [first])).status_code == 200
    forged = moved(first, AlertEventKind.ACKNOWLEDGED, 5)
    refused = await central.post("agent_b2", [forged])
    assert refused.status_code == 403
    assert central.store.count_events() == 1
    # the gateway that reported it moves it on as before
    assert (await central.post("agent_b", [forged])).json() == {"stored": 1, "duplicates": 0}
    seen = (await central.get("manager_b", "/v1/alerts/B-1")).json()
    assert seen["alert"]["status"] == "acknowledged"


async def test_one_batch_cannot_claim_one_alert_for_two_communities(central: Central) -> None:
    event = opened(1, "A")
    twin = event.model_copy(
        update={"id": "evt-twin", "alert": event.alert.model_copy(update={"community": "B"})}
    )
    both = central.tokens.create("edge_agent", ["A", "B"], "agent_ab")[1]
    central.token["agent_ab"] = both
    assert (await central.post("agent_ab", [event, twin])).status_code == 403
    assert central.store.count_events() == 0


async def test_roles_post_or_read_never_both(central: Central) -> None:
    posted_by_reader = await central.post("duty_a", [opened(1, "A")])
    read_by_agent = await central.get("agent_a", "/v1/alerts")
    anonymous = await central.client.get("/v1/alerts")
    wrong = await central.client.get("/v1/alerts", headers={"Authorization": "Bearer ce_x_y"})
    assert posted_by_reader.status_code == read_by_agent.status_code == 403
    assert anonymous.status_code == wrong.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    token_id = central.token["duty_a"].split("_")[1]
    central.tokens.revoke(token_id)
    assert (await central.get("duty_a", "/v1/alerts")).status_code == 401


async def test_a_token_of_A_never_sees_B(central: Central) -> None:
    assert (await central.post("agent_a", [opened(n, "A") for n in range(3)])).status_code == 200
    assert (await central.post("agent_b", [opened(n, "B") for n in range(4)])).status_code == 200

    detail = await central.get("duty_a", "/v1/alerts/B-1")
    missing = await central.get("duty_a", "/v1/alerts/nowhere-1")
    assert detail.status_code == missing.status_code == 404
    assert detail.json() == {"error": {"code": "not_found", "message": "no alert 'B-1'"}}
    asked_for_b = (await central.get("duty_a", "/v1/alerts", community="B")).json()
    assert asked_for_b == {"items": [], "next_cursor": None}
    mine = (await central.get("duty_a", "/v1/alerts", community=["A", "B"])).json()
    assert sorted(a["id"] for a in mine["items"]) == ["A-0", "A-1", "A-2"]
    summary = (await central.get("duty_a", "/v1/summaries")).json()
    assert [s["community"] for s in summary] == ["A"]
    exported = (await central.get("duty_a", "/v1/alerts/export.csv", community="B")).text
    assert exported.splitlines()[1:] == []
    assert _refusals(central) == [
        ("B", "community:B", "export_csv"),
        ("B", "community:B", "list_alerts"),
        ("B", "community:B", "list_alerts"),
        ("B", "alert:B-1", "read_alert"),
    ]
    assert (await central.get("manager_b", "/v1/alerts/B-1")).status_code == 200
    assert (await central.get("platform", "/v1/alerts", limit=100)).json()["items"].__len__() == 7


async def test_a_platform_sees_the_building_but_not_the_unit(central: Central) -> None:
    event = opened(7, "A")
    await central.post("agent_a", [event, moved(event, AlertEventKind.ACKNOWLEDGED, 5)])
    duty = (await central.get("duty_a", "/v1/alerts/A-7")).json()
    platform = (await central.get("platform_a", "/v1/alerts/A-7")).json()
    listed = (await central.get("platform", "/v1/alerts")).json()["items"]
    assert duty["alert"]["unit"] == "7-201"
    assert [e["alert"]["unit"] for e in duty["history"]] == ["7-201", "7-201"]
    assert platform["alert"]["unit"] is None
    assert platform["alert"]["building"] == "b1"
    assert [e["alert"]["unit"] for e in platform["history"]] == [None, None]
    assert [a["unit"] for a in listed] == [None]


async def test_the_csv_export_is_audited_and_masked_by_role(central: Central) -> None:
    for start in (0, 600):  # at most 1,000 events a batch
        posted = await central.post("agent_a", [opened(n, "A") for n in range(start, start + 600)])
        assert posted.json() == {"stored": 600, "duplicates": 0}
    await central.post("agent_b", [opened(n, "B") for n in range(3)])
    before = central.audit.count()
    response = await central.get("platform", "/v1/alerts/export.csv", community="A")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1200
    assert len({r["id"] for r in rows}) == 1200
    assert {r["community"] for r in rows} == {"A"}
    assert {r["unit"] for r in rows} == {""}  # masked for a platform
    assert rows[0]["id"] == "A-1199"
    [record] = central.audit.query(limit=1)
    assert central.audit.count() == before + 1
    assert (record.action, record.object, record.community, record.result) == (
        "export_csv",
        "alerts:export",
        "A",
        "ok",
    )
    assert record.role == "platform"
    duty_rows = (await central.get("duty_a", "/v1/alerts/export.csv", rule="sos")).text
    assert duty_rows.splitlines()[1].split(",")[3] == "1199-201"  # a responder sees the unit


async def test_pages_and_filters_through_the_api(central: Central) -> None:
    await central.post("agent_a", [opened(n, "A", building=f"b{n % 2}") for n in range(25)])
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 4, "building": "b1"}
        if cursor:
            params["cursor"] = cursor
        page = (await central.get("duty_a", "/v1/alerts", **params)).json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"A-{n}" for n in range(23, 0, -2)]
    bad = await central.get("duty_a", "/v1/alerts", cursor="garbage")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "bad_request"
    naive = await central.get("duty_a", "/v1/alerts", since="2026-03-01T08:00:00")
    assert naive.status_code == 422
    assert naive.json()["error"]["code"] == "invalid_request"


async def test_summaries_through_the_api(central: Central) -> None:
    alerts = [opened(n, "A") for n in range(3)]
    acks = [moved(a, AlertEventKind.ACKNOWLEDGED, 60 * (n + 1)) for n, a in enumerate(alerts)]
    await central.post("agent_a", alerts + acks + [moved(acks[0], AlertEventKind.RESOLVED, 600)])
    [summary] = (await central.get("duty_a", "/v1/summaries")).json()
    assert summary == {
        "community": "A",
        "open_by_severity": {"critical": 2},
        "time_to_acknowledge": {"count": 3, "p50_s": 120.0, "p90_s": 168.0},
        "time_to_resolve": {"count": 1, "p50_s": 600.0, "p90_s": 600.0},
    }


async def test_a_request_body_over_one_mebibyte_is_413(central: Central) -> None:
    huge = b'{"events": [' + b" " * (1024 * 1024) + b"]}"
    response = await central.client.post(
        "/v1/alert-events",
        content=huge,
        headers={**central.auth("agent_a"), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    too_many = await central.post("agent_a", [opened(n, "A") for n in range(1001)])
    assert too_many.status_code == 422
    assert central.store.count_events() == 0


_SCOPED_ROLES = ("edge_agent", "duty_officer", "property_manager", "platform", "admin")


def _central_routes(b_id: str, forged: dict[str, Any]) -> dict[tuple[str, str], tuple[str, Any]]:
    """(method, route path) -> (URL with B's ids or asking for B, body)."""
    b_batch = {"events": [opened(9, "B").model_dump(mode="json")]}
    return {
        ("GET", "/openapi.json"): ("/openapi.json", None),
        ("GET", "/docs"): ("/docs", None),
        ("GET", "/docs/oauth2-redirect"): ("/docs/oauth2-redirect", None),
        ("GET", "/redoc"): ("/redoc", None),
        ("GET", "/favicon.ico"): ("/favicon.ico", None),  # a redirect to the console's icon
        ("GET", "/healthz"): ("/healthz", None),
        ("POST", "/v1/alert-events"): ("/v1/alert-events", b_batch),
        ("POST", "/v1/alert-events#forged"): ("/v1/alert-events", forged),
        ("GET", "/v1/alerts"): ("/v1/alerts?community=B&community=A", None),
        ("GET", "/v1/alerts/export.csv"): ("/v1/alerts/export.csv?community=B", None),
        ("GET", "/v1/alerts/{alert_id}"): (f"/v1/alerts/{b_id}", None),
        ("GET", "/v1/summaries"): ("/v1/summaries?community=B", None),
        # the duty console (a mounted app of cookie sessions): without one, B's alert page sends
        # to sign-in; its scope once signed in is tested in chromium (tests/test_console_central.py)
        ("GET", "/console"): (f"/console/alerts/{b_id}", None),
    }


@pytest.mark.parametrize("role", _SCOPED_ROLES)
async def test_every_role_of_A_never_reaches_or_rewrites_B(central: Central, role: str) -> None:
    """#20: the central matrix, every route (the write included) for every role scoped to A."""
    south = opened(1, "B")
    assert (await central.post("agent_b", [south])).status_code == 200
    forged_event = moved(south, AlertEventKind.RESOLVED, 60)
    forged_event = forged_event.model_copy(
        update={
            "id": "evt-forged",
            "alert": forged_event.alert.model_copy(update={"community": "A"}),
        }
    )
    forged = {"events": [forged_event.model_dump(mode="json")]}
    token = central.tokens.create(role, ["A"], role)[1]
    headers = {"Authorization": f"Bearer {token}"}
    routes = _central_routes(south.alert.id, forged)
    app = central.client._transport.app  # type: ignore[attr-defined]
    known = {(m, p.partition("#")[0]) for m, p in routes}
    served = {  # included routers' routes flattened, as in tests/test_tenancy.py
        (m, str(r.path))
        for r in iter_route_contexts(app.routes)
        for m in (r.methods or {"GET"}) - {"HEAD"}
    }
    assert served == known, f"routes without a tenancy entry: {sorted(served - known)}"
    leaks = []
    for (method, path), (url, body) in routes.items():
        response = await central.client.request(method, url, json=body, headers=headers)
        text, status = response.text, response.status_code
        if path.startswith("/v1/alert-events"):
            wanted = 403  # an agent of A posting for B, or a role that does not post
        elif path.startswith("/v1/"):
            wanted = 403 if role == "edge_agent" else 404 if "{alert_id}" in path else 200
        elif path == "/console":
            wanted = 303  # to sign-in: the bearer token is not a session
        elif path == "/favicon.ico":
            wanted = 301  # to the console's icon, the same for everyone
        else:
            wanted = 200
        if status != wanted:
            leaks.append(f"{role} {method} {url}: {status}, expected {wanted}: {text[:200]}")
        if wanted == 404:
            missing = await central.client.get("/v1/alerts/nowhere-1", headers=headers)
            if text.replace(south.alert.id, "nowhere-1") != missing.text:
                leaks.append(f"{role} {url}: answers otherwise than for a missing id")
            text = text.replace(south.alert.id, "")
        if path.startswith("/v1/alert-events"):
            continue  # the refusal names the foreign alert or community it refuses
        if south.alert.id in text or '"community":"B"' in text.replace(" ", ""):
            leaks.append(f"{role} {method} {url}: B in the answer")
    assert not leaks, "\n".join(leaks)
    # nothing of B changed: its one event, active, still B's
    stored = central.store.get(south.alert.id, None)
    assert stored is not None
    assert (stored.community, stored.status) == ("B", "active")
    assert len(central.store.history(south.alert.id, None)) == 1
    assert central.store.count_events() == 1
    refused = [r for r in central.audit.query(limit=1000) if r.result == "refused"]
    assert refused, "the attempts were audited"


async def test_an_admin_of_every_community_reads_b_on_the_central_api(central: Central) -> None:
    assert (await central.post("agent_b", [opened(1, "B")])).status_code == 200
    token = central.tokens.create("admin", ["*"], "city-admin")[1]
    headers = {"Authorization": f"Bearer {token}"}
    one = await central.client.get("/v1/alerts/B-1", headers=headers)
    listed = await central.client.get("/v1/alerts", params={"community": "B"}, headers=headers)
    assert one.status_code == 200
    assert one.json()["alert"]["unit"] is None  # not a responder: masked
    assert [a["id"] for a in listed.json()["items"]] == ["B-1"]
    health = await central.client.get("/healthz", headers=headers)
    assert health.json() == {"status": "ok", "store": "sqlite"}
    assert (await central.client.get("/healthz")).json() == {"status": "ok"}
