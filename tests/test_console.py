"""The duty console over HTTP (in-process, a real agent and token store): sign-in and its cookie,
CSRF on every state change, scopes and masking as the API's, the board, the alert page and its
actions, static assets and headers. The browser-side behaviour is in tests/test_console_browser.py.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry
from edge.ingest import parse_mqtt_url
from edge.model import AlertStatus, Severity
from edge.sinks import ReadingStore
from gateway.api import create_app
from gateway.audit import AuditLog
from gateway.console.board import Filters, gather
from gateway.console.catalogue import WORDS, choose
from gateway.tokens import TokenStore
from tests.factories import press_sos

PROFILES = ProfileRegistry.load(default_profile_dir())
BOOTSTRAP = "bootstrap-admin-token"
HTMX = {"HX-Request": "true"}  # the board fragments answer htmx; a direct visit redirects

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_SIGNIN_CSRF = re.compile(r'name="signin_csrf" value="([^"]+)"')


@dataclass
class _World:
    agent: Agent
    app: httpx.ASGITransport
    tokens: TokenStore
    audit: AuditLog
    duty: str  # a duty officer of community a, named 王值班
    platform: str  # a read-only platform token of community a
    a_alert: str
    b_alert: str

    def client(self, base: str = "http://gw") -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.app, base_url=base)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[_World]:
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    readings = ReadingStore(tmp_path / "readings.db")
    agent = Agent(config, PROFILES, DeviceRegistry(), [readings], clock)
    tokens = TokenStore(tmp_path / "tokens.db")
    audit = AuditLog(tmp_path / "audit.db")
    _, duty = tokens.create("duty_officer", ["a"], name="王值班")
    _, platform = tokens.create("platform", ["a"], name="district")
    async with agent:
        (b_event,) = await press_sos(agent, clock, "ce/b/b1/tuya-sos-button/sos-b1")
        (a_event,) = await press_sos(agent, clock, "ce/a/a1/tuya-sos-button/sos-a1")
        app = create_app(agent, BOOTSTRAP, readings, tokens=tokens, audit=audit)
        yield _World(
            agent,
            httpx.ASGITransport(app=app),
            tokens,
            audit,
            duty,
            platform,
            a_event.alert.id,
            b_event.alert.id,
        )


async def _sign_in(client: httpx.AsyncClient, token: str, next_path: str = "") -> httpx.Response:
    form = await client.get("/console/sign-in", params={"next": next_path} if next_path else {})
    match = _SIGNIN_CSRF.search(form.text)
    assert match is not None, form.text
    return await client.post(
        "/console/sign-in",
        data={"token": token, "signin_csrf": match.group(1), "next": next_path},
    )


async def _csrf(client: httpx.AsyncClient, alert_id: str) -> str:
    page = await client.get(f"/console/alerts/{alert_id}")
    match = _CSRF.search(page.text)
    assert match is not None, page.text
    return match.group(1)


def test_language_is_chinese_unless_switched_or_asked() -> None:
    assert choose(None, None) == "zh"
    assert choose(None, "en-US,en;q=0.9") == "en"
    assert choose(None, "fr-FR, en;q=0.3, zh-CN;q=0.8") == "zh"
    assert choose(None, "de, fr") == "zh"
    assert choose("en", "zh-CN") == "en"
    assert choose("xx", "en") == "en"
    assert WORDS["zh"].keys() == WORDS["en"].keys()
    # templates write `w.key`: a key named like a dict method would print the method
    assert [key for key in WORDS["zh"] if hasattr(dict, key)] == []


async def test_a_page_without_a_session_sends_to_sign_in_and_back(world: _World) -> None:
    async with world.client() as client:
        target = f"/console/alerts/{world.a_alert}"
        first = await client.get(target)
        assert first.status_code == 303
        assert first.headers["location"].startswith("/console/sign-in?next=")
        signed = await _sign_in(client, world.duty, target)
        assert signed.status_code == 303
        assert signed.headers["location"] == target  # straight to the alert
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        assert "path=/console" in cookie
        assert "secure" not in cookie  # plain http here; see the https test
        page = await client.get(target)
        assert page.status_code == 200
        assert "王值班" in page.text
        # another site's address as `next` is never followed
        again = await client.get("/console/sign-in", params={"next": "//evil.example/x"})
        assert again.headers["location"] == "/console/"


async def test_the_cookie_is_secure_behind_https(world: _World) -> None:
    async with world.client("https://gw") as client:
        signed = await _sign_in(client, world.duty)
        assert "secure" in signed.headers["set-cookie"].lower()


async def test_sign_in_refuses_a_wrong_token_and_a_forged_form(world: _World) -> None:
    async with world.client() as client:
        wrong = await _sign_in(client, "ce_nothere_x")
        assert wrong.status_code == 401
        assert WORDS["zh"]["bad_token"] in wrong.text
        forged = await client.post(
            "/console/sign-in", data={"token": world.duty, "signin_csrf": "guess"}
        )
        assert forged.status_code == 403
        assert "set-cookie" not in forged.headers or "ce_console=" not in forged.headers.get(
            "set-cookie", ""
        )


async def test_pages_carry_a_strict_csp_and_no_inline_script(world: _World) -> None:
    async with world.client() as client:
        await _sign_in(client, world.duty)
        page = await client.get("/console/")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "default-src 'none'" in csp
        assert page.headers["cache-control"] == "no-store"
        assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text) is None
        assert " style=" not in page.text
        assert "http://" not in page.text
        assert "https://" not in page.text
        assert 'lang="zh-CN"' in page.text
        english = await client.get("/console/", headers={"Accept-Language": "en"})
        assert 'lang="en"' in english.text
        assert WORDS["en"]["open_alerts"] in english.text


async def test_static_assets_are_cached_by_hash(world: _World) -> None:
    async with world.client() as client:
        await _sign_in(client, world.duty)
        page = await client.get("/console/")
        urls = re.findall(r'(?:src|href)="(/console/static/[^"]+)"', page.text)
        assert len(urls) == 6  # the icon, css, htmx, its sse extension, console.js, board.js
        for url in urls:
            asset = await client.get(url)
            assert asset.status_code == 200, url
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        bare = await client.get("/console/static/console.js")
        assert bare.headers["cache-control"] == "no-cache"
        licence = await client.get("/console/static/vendor/LICENSE-htmx.txt")
        assert licence.status_code == 200


async def test_the_board_shows_only_the_callers_communities(world: _World) -> None:
    async with world.client() as client:
        await _sign_in(client, world.duty)
        board = await client.get("/console/board", headers=HTMX)
        assert world.a_alert in board.text
        assert world.b_alert not in board.text
        admin = world.client()
        async with admin:
            await _sign_in(admin, BOOTSTRAP)
            both = await admin.get("/console/board", headers=HTMX)
            assert world.a_alert in both.text
            assert world.b_alert in both.text
            only_b = await admin.get("/console/board", params={"community": "b"}, headers=HTMX)
            assert world.a_alert not in only_b.text
            assert world.b_alert in only_b.text


async def test_another_communitys_alert_is_a_404_like_a_missing_one(world: _World) -> None:
    async with world.client() as client:
        await _sign_in(client, world.duty)
        other = await client.get(f"/console/alerts/{world.b_alert}")
        missing = await client.get("/console/alerts/missing-id")
        assert other.status_code == missing.status_code == 404
        assert other.text.replace(world.b_alert, "missing-id") == missing.text
        csrf = await _csrf(client, world.a_alert)
        act = await client.post(f"/console/alerts/{world.b_alert}/acknowledge", data={"csrf": csrf})
        assert act.status_code == 404
    alert = world.agent.alert_store.get(world.b_alert)
    assert alert is not None
    assert alert.status == "active"
    assert world.audit.query(action="cross_tenant")


async def test_a_state_change_without_the_csrf_token_is_refused(world: _World) -> None:
    async with world.client() as client:
        await _sign_in(client, world.duty)
        csrf = await _csrf(client, world.a_alert)
        url = f"/console/alerts/{world.a_alert}/acknowledge"
        assert (await client.post(url, data={})).status_code == 403
        assert (await client.post(url, data={"csrf": "x" + csrf})).status_code == 403
        foreign = await client.post(
            url, data={"csrf": csrf}, headers={"Origin": "https://evil.example"}
        )
        assert foreign.status_code == 403
        assert (await client.post("/console/sign-out", data={})).status_code == 403
        alert = world.agent.alert_store.get(world.a_alert)
        assert alert is not None
        assert alert.status == "active"
        done = await client.post(url, data={"csrf": csrf, "note": "去现场"})
        assert done.status_code == 303
        header = await client.post(  # htmx sends it as a header
            f"/console/alerts/{world.a_alert}/assign",
            data={"assignee": "李保安"},
            headers={"X-CSRF-Token": csrf},
        )
        assert header.status_code == 303
    history = world.agent.alert_store.history(world.a_alert)
    assert [(e.kind, e.actor) for e in history[-2:]] == [
        ("acknowledged", "王值班"),  # the person's name, not the token id
        ("assigned", "王值班"),
    ]


async def test_a_read_only_role_sees_no_buttons_and_cannot_act(world: _World) -> None:
    async with world.client() as client:
        await _sign_in(client, world.platform)
        page = await client.get(f"/console/alerts/{world.a_alert}")
        assert page.status_code == 200
        assert 'id="read-only"' in page.text
        assert "/acknowledge" not in page.text
        assert "/resolve" not in page.text
        csrf = _CSRF.search(page.text)
        assert csrf is not None  # the sign-out form's
        refused = await client.post(
            f"/console/alerts/{world.a_alert}/acknowledge", data={"csrf": csrf.group(1)}
        )
        assert refused.status_code == 403
    async with world.client() as duty:
        await _sign_in(duty, world.duty)
        page = await duty.get(f"/console/alerts/{world.a_alert}")
        assert f"/console/alerts/{world.a_alert}/acknowledge" in page.text


async def test_two_people_acknowledging_at_once_one_wins_the_other_sees_who(
    world: _World,
) -> None:
    _, second_token = world.tokens.create("duty_officer", ["a"], name="张夜班")
    async with world.client() as first, world.client() as second:
        await _sign_in(first, world.duty)
        await _sign_in(second, second_token)
        csrf1, csrf2 = await _csrf(first, world.a_alert), await _csrf(second, world.a_alert)
        url = f"/console/alerts/{world.a_alert}/acknowledge"
        won = await first.post(url, data={"csrf": csrf1})
        lost = await second.post(url, data={"csrf": csrf2})
    assert won.status_code == 303
    assert lost.status_code == 409
    assert "王值班" in lost.text
    history = world.agent.alert_store.history(world.a_alert)
    assert [e.actor for e in history if e.kind == "acknowledged"] == ["王值班"]


async def test_resolve_needs_an_outcome_and_records_it(world: _World) -> None:
    async with world.client() as client:
        await _sign_in(client, world.duty)
        csrf = await _csrf(client, world.a_alert)
        url = f"/console/alerts/{world.a_alert}/resolve"
        assert (await client.post(url, data={"csrf": csrf})).status_code == 400
        done = await client.post(url, data={"csrf": csrf, "outcome": "false_alarm", "note": "猫"})
        assert done.status_code == 303
    alert = world.agent.alert_store.get(world.a_alert)
    assert alert is not None
    assert (alert.status, alert.resolved_by, alert.note) == (
        "resolved",
        "王值班",
        "[false_alarm] 猫",
    )


async def test_sign_out_and_revocation_end_the_session(world: _World) -> None:
    token_id, token = world.tokens.create("duty_officer", ["a"], name="临时")
    async with world.client() as client:
        await _sign_in(client, token)
        assert (await client.get("/console/")).status_code == 200
        world.tokens.revoke(token_id)
        assert (await client.get("/console/")).status_code == 303
    async with world.client() as client:
        await _sign_in(client, world.duty)
        csrf = await _csrf(client, world.a_alert)
        out = await client.post("/console/sign-out", data={"csrf": csrf})
        assert out.status_code == 303
        assert (await client.get("/console/")).status_code == 303
        htmx = await client.get("/console/board", headers={"HX-Request": "true"})
        assert htmx.status_code == 401
        assert htmx.headers["hx-redirect"].startswith("/console/sign-in")


async def test_a_session_expires(world: _World) -> None:
    async with world.client() as client:
        await _sign_in(client, world.duty)
        console = world.app.app.routes[-1].app  # type: ignore[attr-defined]  # the /console mount
        console.state.sessions.ttl_s = 0.0
        for session in list(console.state.sessions._sessions.values()):
            session.expires_at = 0.0
        assert (await client.get("/console/")).status_code == 303


def test_the_board_orders_by_severity_then_age_and_counts(world: _World) -> None:
    desk = world.app.app.state.desk  # type: ignore[attr-defined]
    board = gather(desk, None, Filters())
    assert [a.id for a in board.rows] == [world.b_alert, world.a_alert]  # both critical: b older
    assert board.by_severity[Severity.CRITICAL] == 2
    assert board.by_status[AlertStatus.ACTIVE] == 2
    only_a = gather(desk, ["a"], Filters())
    assert [a.id for a in only_a.rows] == [world.a_alert]
    none = gather(desk, ["a"], Filters(community="b"))
    assert none.rows == []
    assert Filters.parse({"severity": "bogus", "status": "resolved"}) == Filters()
    assert Filters(building="b1").query(severity="critical") == "building=b1&severity=critical"


async def test_docs_and_redoc_load_their_assets_from_the_gateway(world: _World) -> None:
    async with world.client() as client:
        for path in ("/docs", "/redoc"):
            page = await client.get(path)
            assert page.status_code == 200
            assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png)[^"]*)"', page.text)
            assert assets, page.text
            for url in assets:
                assert url.startswith("/console/static/vendor/"), url
                assert (await client.get(url)).status_code == 200, url
            assert "cdn" not in page.text
            assert "fonts.googleapis" not in page.text


async def test_the_board_puts_the_unacknowledged_first_and_draws_at_most_shown(
    world: _World, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = world.app.app.state.desk  # type: ignore[attr-defined]
    await desk.acknowledge(world.b_alert, "someone", None)
    board = gather(desk, None, Filters())
    assert [a.id for a in board.rows] == [world.a_alert, world.b_alert]  # b older, but taken
    monkeypatch.setattr("gateway.console.board.SHOWN", 1)
    capped = gather(desk, None, Filters())
    assert ([a.id for a in capped.rows], capped.matching) == ([world.a_alert], 2)
    assert len(gather(desk, None, Filters(all=True)).rows) == 2
    async with world.client() as client:
        await _sign_in(client, BOOTSTRAP)
        page = await client.get("/console/board", headers=HTMX)
        assert 'id="capped"' in page.text
        assert page.text.count("data-device=") == 1
        assert 'href="/console/?all=1"' in page.text


async def test_the_cap_never_hides_an_alarm_that_must_sound(
    world: _World, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = world.app.app.state.desk  # type: ignore[attr-defined]
    monkeypatch.setattr("gateway.console.board.SHOWN", 1)
    # two unanswered SOS presses over a cap of one: the newer is not drawn, but sounds
    board = gather(desk, None, Filters())
    assert [a.id for a in board.rows] == [world.b_alert]
    assert board.alarms == [world.b_alert, world.a_alert]
    async with world.client() as client:
        await _sign_in(client, BOOTSTRAP)
        page = await client.get("/console/board", headers=HTMX)
        (alarms,) = re.findall(r'data-alarms="([^"]*)"', page.text)
        assert alarms.split() == [world.b_alert, world.a_alert]
        assert page.text.count("data-device=") == 1
    # once one is taken, it no longer sounds
    await desk.acknowledge(world.a_alert, "someone", None)
    assert gather(desk, None, Filters()).alarms == [world.b_alert]


_ROW = re.compile(r'<tr [^>]*data-alert="([^"]+)".*?</tr>', re.S)


def _rows(html: str) -> dict[str, str]:
    """Each drawn row's HTML by its alert id."""
    return {m.group(1): m.group(0) for m in _ROW.finditer(html)}


def _update(html: str) -> dict[str, str]:
    """The figures a row answer carries for the page to check itself against."""
    (root,) = re.findall(r'<div id="board-update" ([^>]*)>', html)
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', root))


async def test_an_alert_event_redraws_its_row_as_the_whole_board_draws_it(world: _World) -> None:
    desk = world.app.app.state.desk  # type: ignore[attr-defined]
    async with world.client() as client:
        await _sign_in(client, BOOTSTRAP)
        board = await client.get("/console/board", headers=HTMX)
        row = await client.get("/console/board/rows", params={"alert": world.a_alert}, headers=HTMX)
        assert row.status_code == 200
        assert "<html" not in row.text
        # one way a row is drawn: byte for byte the whole board's, with its counters
        assert _rows(row.text) == {world.a_alert: _rows(board.text)[world.a_alert]}
        assert _update(row.text) == {
            "asked": world.a_alert,
            "alarms": world.a_alert,  # an unanswered SOS: it sounds
            "alarm-count": "2",
            "drawn": "2",
            "tail": world.a_alert,
        }
        assert 'data-open="2"' in row.text
        # acknowledged: the same row, taken, moved below the unanswered one, silent
        await desk.acknowledge(world.a_alert, "someone", None)
        taken = await client.get(
            "/console/board/rows", params={"alert": world.a_alert}, headers=HTMX
        )
        assert 'data-status="acknowledged"' in _rows(taken.text)[world.a_alert]
        assert _update(taken.text)["alarms"] == ""
        assert _update(taken.text)["tail"] == world.a_alert
        # resolved: not drawn, which takes its row away; the counters follow
        await desk.resolve(world.a_alert, "someone", None)
        gone = await client.get(
            "/console/board/rows", params={"alert": world.a_alert}, headers=HTMX
        )
        assert _rows(gone.text) == {}
        assert (_update(gone.text)["drawn"], _update(gone.text)["tail"]) == ("1", world.b_alert)
        assert 'data-open="1"' in gone.text
        # opened directly (a bookmark): the board; more than ten at once: the page redraws all
        direct = await client.get("/console/board/rows", params={"alert": world.b_alert})
        assert direct.status_code == 303
        assert direct.headers["location"].startswith("/console/?")
        many = await client.get(
            "/console/board/rows", params=[("alert", world.b_alert)] * 11, headers=HTMX
        )
        assert many.status_code == 422


async def test_a_row_keeps_the_boards_filters_and_cap(
    world: _World, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world.client() as client:
        await _sign_in(client, BOOTSTRAP)
        # outside the filter: not drawn (its row goes), counted in the filter's counters only
        only_b = await client.get(
            "/console/board/rows",
            params={"alert": world.a_alert, "community": "b"},
            headers=HTMX,
        )
        assert _rows(only_b.text) == {}
        assert _update(only_b.text)["drawn"] == "1"
        # a cap of one: the newer SOS is not drawn, still sounds, and the last drawn row comes
        # along (a row leaving a capped board pulls the next one in)
        monkeypatch.setattr("gateway.console.board.SHOWN", 1)
        capped = await client.get(
            "/console/board/rows", params={"alert": world.a_alert}, headers=HTMX
        )
        assert list(_rows(capped.text)) == [world.b_alert]
        assert _update(capped.text) == {
            "asked": world.a_alert,
            "alarms": world.a_alert,
            "alarm-count": "2",
            "drawn": "1",
            "tail": world.b_alert,
        }
        assert 'id="capped"' in capped.text


async def test_another_communitys_row_is_a_404_like_a_missing_one(world: _World) -> None:
    async with world.client() as client:
        await _sign_in(client, world.duty)
        mine = await client.get(
            "/console/board/rows", params={"alert": world.a_alert}, headers=HTMX
        )
        assert list(_rows(mine.text)) == [world.a_alert]
        asked: list[list[tuple[str, str | int | float | bool | None]]] = [
            [("alert", world.b_alert)],
            [("alert", world.b_alert), ("community", "b")],
            [("alert", world.a_alert), ("alert", world.b_alert)],
        ]
        for params in asked:
            other = await client.get("/console/board/rows", params=params, headers=HTMX)
            instead = [(k, "missing-id" if v == world.b_alert else v) for k, v in params]
            missing = await client.get("/console/board/rows", params=instead, headers=HTMX)
            # the answer for an id that does not exist (the page names what it was asked for)
            assert other.status_code == missing.status_code == 404
            assert other.text.replace(world.b_alert, "missing-id") == missing.text
    refused = world.audit.query(action="cross_tenant")
    assert {r.object for r in refused} == {f"alert:{world.b_alert}"}


# every console route that is given an alert id (in its path or query), with B's id in it: the
# tenancy matrix of tests/test_tenancy.py cannot reach the console (a bearer token is not a
# session), so this one walks the console's own routes as community a's duty officer
_ALERT_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/alerts/{alert_id}"): "/console/alerts/{id}",
    ("POST", "/alerts/{alert_id}/{action}"): "/console/alerts/{id}/acknowledge",
    ("GET", "/board/rows"): "/console/board/rows?alert={id}",
    ("GET", "/buildings/places"): "/console/buildings/places?alert={id}",
}


async def test_every_console_route_given_an_alert_answers_for_b_as_for_a_missing_one(
    world: _World,
) -> None:
    console = world.app.app.routes[-1].app  # type: ignore[attr-defined]  # the /console mount
    taking = {
        (method, context.path)
        for context in iter_route_contexts(console.routes)
        if isinstance(route := context.original_route, APIRoute)
        and any(
            "alert" in p.name for p in route.dependant.path_params + route.dependant.query_params
        )
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert taking == set(_ALERT_ROUTES), "a console route given an alert id: classify it here"
    async with world.client() as client:
        await _sign_in(client, world.duty)
        csrf = await _csrf(client, world.a_alert)
        for (method, _), url in _ALERT_ROUTES.items():
            answers = []
            for alert_id in (world.b_alert, "missing-id"):
                response = await client.request(
                    method, url.format(id=alert_id), data={"csrf": csrf}, headers=HTMX
                )
                answers.append((response.status_code, response.text.replace(alert_id, "ID")))
            assert answers[0] == answers[1], url
            assert answers[0][0] in (200, 404), url
    alert = world.agent.alert_store.get(world.b_alert)
    assert alert is not None
    assert alert.status == "active"


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_consoles_colours_pass_wcag_aa() -> None:
    css = (Path(__file__).parent.parent / "gateway/console/static/console.css").read_text()
    colour = dict(re.findall(r"--([a-z]+): (#[0-9a-f]{6})", css))
    white, alarm_row, header = "#ffffff", "#fdecea", "#16202c"
    pairs = [(white, colour[s]) for s in ("critical", "major", "minor", "warning", "info")]
    pairs += [(white, colour["active"]), (white, colour["acknowledged"])]  # counters
    pairs += [(alarm_row, colour[s]) for s in ("active", "acknowledged", "muted", "ink")]
    pairs += [(white, "#0b4fa8"), (alarm_row, "#0b4fa8"), (header, white)]  # links, header
    failing = [(a, b, round(_contrast(a, b), 2)) for a, b in pairs if _contrast(a, b) < 4.5]
    assert failing == []
