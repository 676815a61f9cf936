"""The household and visit routes in-process over a real agent: scope, masking, audit, CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.agent import Agent, AgentConfig
from edge.clock import FakeClock
from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry
from edge.ingest import parse_mqtt_url
from edge.sinks import ReadingStore
from gateway.api import create_app
from gateway.audit import AuditLog
from gateway.tokens import TokenStore
from tests.factories import press_sos

PROFILES = ProfileRegistry.load(default_profile_dir())
BOOTSTRAP = "bootstrap-admin-token"
# 2026-12-15 10:00 in Shanghai: mid-month
NOW = datetime(2026, 12, 15, 2, 0, tzinfo=UTC)


def household(
    unit: str, worker: str = "wang-fang", community: str = "a", **changes: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "community": community,
        "building": "b1",
        "floor": "3",
        "unit": unit,
        "residents": [{"name": "张桂英", "phone": "13812345678", "birth_year": 1941}],
        "living_alone": True,
        "care_level": "partial",
        "device_ids": [f"sos-{community}-{unit}"],
        "family": [
            {"name": "李明", "relation": "儿子", "phone": "13900001111", "person_id": f"fam-{unit}"}
        ],
        "care_worker": {"person_id": worker, "name": "王芳", "phone": "13700003333"},
    }
    body.update(changes)
    return body


@dataclass
class _World:
    agent: Agent
    client: httpx.AsyncClient
    clock: FakeClock
    audit: AuditLog
    tokens: TokenStore

    def token(self, role: str, communities: list[str], person: str | None = None) -> str:
        _, token = self.tokens.create(role, communities, name=f"{role}-{person}", person=person)
        return token

    async def call(
        self, method: str, url: str, token: str = BOOTSTRAP, body: Any = None, **kw: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **kw.pop("headers", {})}
        return await self.client.request(method, url, json=body, headers=headers, **kw)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[_World]:
    clock = FakeClock(NOW)
    config = AgentConfig(
        broker=parse_mqtt_url("mqtt://127.0.0.1:1"), client_id="gw", data_dir=tmp_path / "data"
    )
    readings = ReadingStore(tmp_path / "readings.db")
    agent = Agent(config, PROFILES, DeviceRegistry(), [readings], clock)
    tokens = TokenStore(tmp_path / "tokens.db")
    audit = AuditLog(tmp_path / "audit.db")
    async with agent:
        app = create_app(agent, BOOTSTRAP, readings, tokens=tokens, audit=audit)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield _World(agent, client, clock, audit, tokens)


async def _register(world: _World, *bodies: dict[str, Any]) -> None:
    manager = world.token("property_manager", sorted({b["community"] for b in bodies}))
    for body in bodies:
        response = await world.call("POST", "/v1/households", manager, body)
        assert response.status_code == 201, response.text


async def test_a_property_manager_keeps_the_register(world: _World) -> None:
    manager = world.token("property_manager", ["a"])
    created = await world.call("POST", "/v1/households", manager, household("3-301"))
    assert created.status_code == 201, created.text
    view = created.json()
    assert (view["id"], view["revision"], view["masked"]) == ("a/b1/3-301", 1, False)
    assert view["residents"][0]["name"] == "张桂英"

    again = await world.call("POST", "/v1/households", manager, household("3-301"))
    assert again.status_code == 409
    assert "changed meanwhile" in again.json()["error"]["message"]

    # what GET answered goes back changed; a stale revision is a conflict
    got = (await world.call("GET", "/v1/households/a/b1/3-301", manager)).json()
    got["note"] = "女儿每周日来"
    put = await world.call("PUT", "/v1/households/a/b1/3-301", manager, got)
    assert put.status_code == 200, put.text
    assert put.json()["revision"] == 2
    stale = await world.call("PUT", "/v1/households/a/b1/3-301", manager, got)
    assert stale.status_code == 409

    wrong_path = await world.call("PUT", "/v1/households/a/b1/9-999", manager, household("3-301"))
    assert wrong_path.status_code == 400

    taken = household("3-302", device_ids=["sos-a-3-301"])
    refused = await world.call("POST", "/v1/households", manager, taken)
    assert refused.status_code == 409
    assert "already belongs to household a/b1/3-301" in refused.json()["error"]["message"]

    admin = world.token("admin", ["a"])  # sees households masked: not where the device is
    masked = await world.call("POST", "/v1/households", admin, taken)
    assert masked.status_code == 409
    assert "3-301" not in masked.text.replace("sos-a-3-301", "")
    assert "already belongs to another household" in masked.json()["error"]["message"]

    deleted = await world.call("DELETE", "/v1/households/a/b1/3-301", manager)
    assert deleted.status_code == 204
    gone = await world.call("GET", "/v1/households/a/b1/3-301", manager)
    assert gone.status_code == 404


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"unit": "3/301"}, "body.unit"),
        ({"residents": [{"name": "甲"}, {"name": "乙"}]}, "body"),
        ({"care_level": "bedridden"}, "body.care_level"),
        ({"family": [{"name": "李明", "phone": "call me"}]}, "body.family.0.phone"),
        ({"masked": True}, "body"),
        ({"colour": "red"}, "body.colour"),
    ],
)
async def test_bad_households_are_refused_naming_the_field(
    world: _World, change: dict[str, Any], where: str
) -> None:
    manager = world.token("property_manager", ["a"])
    response = await world.call("POST", "/v1/households", manager, {**household("1"), **change})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(where)


async def test_who_may_change_the_register(world: _World) -> None:
    await _register(world, household("3-301"))
    for role, person in (("duty_officer", None), ("platform", None), ("care_worker", "wang-fang")):
        token = world.token(role, ["a"], person)
        response = await world.call("POST", "/v1/households", token, household("3-309"))
        assert response.status_code == 403, (role, response.text)
        delete = await world.call("DELETE", "/v1/households/a/b1/3-301", token)
        assert delete.status_code == 403, (role, delete.text)


async def test_responders_read_in_full_platforms_masked_and_every_read_is_audited(
    world: _World,
) -> None:
    await _register(world, household("3-301"))
    duty = world.token("duty_officer", ["a"])
    full = (await world.call("GET", "/v1/households/a/b1/3-301", duty)).json()
    assert full["residents"][0] == {"name": "张桂英", "phone": "13812345678", "birth_year": 1941}
    assert full["masked"] is False

    platform = world.token("platform", ["a"])
    listed = (await world.call("GET", "/v1/households", platform)).json()["items"]
    (shown,) = listed
    assert shown["masked"] is True
    assert shown["residents"][0]["name"] == "张*英"
    assert shown["residents"][0]["phone"] == "138****5678"
    assert shown["family"][0] == {
        "name": "李*",
        "relation": "儿子",
        "phone": "139****1111",
        "call_after_minutes": 10,
        "person_id": None,
    }
    assert shown["care_worker"]["phone"] == "137****3333"
    assert shown["unit"].startswith("h-")
    assert shown["floor"] is None
    assert "3-301" not in str({k: v for k, v in shown.items() if k != "device_ids"})
    # the pseudonym it was shown finds the household again
    by_pseudonym = await world.call("GET", f"/v1/households/{shown['id']}", platform)
    assert by_pseudonym.status_code == 200
    assert by_pseudonym.json()["residents"][0]["name"] == "张*英"

    records = world.audit.query(limit=100)
    reads = [(r.role, r.action) for r in records if r.action.startswith("read")]
    assert ("duty_officer", "read_personal_data") in reads
    assert ("platform", "read_masked") in reads
    assert all("3-301" not in r.object for r in records)  # the audit names a pseudonym


async def test_a_care_worker_sees_only_her_households(world: _World) -> None:
    await _register(
        world, household("3-301"), household("3-302", worker="li-hua"), household("3-303")
    )
    wang = world.token("care_worker", ["a"], "wang-fang")
    listed = (await world.call("GET", "/v1/households", wang)).json()["items"]
    assert [h["id"] for h in listed] == ["a/b1/3-301", "a/b1/3-303"]
    assert listed[0]["residents"][0]["phone"] == "13812345678"  # she visits them: in full

    other = await world.call("GET", "/v1/households/a/b1/3-302", wang)
    missing = await world.call("GET", "/v1/households/a/b1/3-399", wang)
    assert (other.status_code, missing.status_code) == (404, 404)
    assert (
        other.json()["error"]["message"].replace("3-302", "3-399")
        == missing.json()["error"]["message"]
    )
    refused = world.audit.query(action="not_own")
    assert [(r.role, r.result) for r in refused] == [("care_worker", "refused")]

    # the rest of the API is not hers
    alerts = await world.call("GET", "/v1/alerts", wang)
    assert alerts.status_code == 403
    assert "/v1/households" in alerts.json()["error"]["message"]


async def test_a_family_member_sees_only_their_relatives_household_and_alerts(
    world: _World,
) -> None:
    await _register(world, household("3-301"), household("3-302"))
    (mine,) = await press_sos(world.agent, world.clock, "ce/a/b1/tuya-sos-button/sos-a-3-301")
    await press_sos(world.agent, world.clock, "ce/a/b1/tuya-sos-button/sos-a-3-302")
    family = world.token("family", ["a"], "fam-3-301")
    listed = (await world.call("GET", "/v1/households", family)).json()["items"]
    assert [h["id"] for h in listed] == ["a/b1/3-301"]
    detail = (await world.call("GET", "/v1/households/a/b1/3-301", family)).json()
    assert [a["id"] for a in detail["open_alerts"]] == [mine.alert.id]
    assert (await world.call("GET", "/v1/households/a/b1/3-302", family)).status_code == 404
    assert (await world.call("GET", f"/v1/alerts/{mine.alert.id}", family)).status_code == 403
    assert (await world.call("GET", "/v1/visits/due", family)).status_code == 403
    assert (await world.call("GET", "/v1/households/export", family)).status_code == 403


async def test_another_communitys_household_is_a_404_audited(world: _World) -> None:
    await _register(world, household("3-301", community="b"))
    a_duty = world.token("duty_officer", ["a"])
    response = await world.call("GET", "/v1/households/b/b1/3-301", a_duty)
    assert response.status_code == 404
    assert (await world.call("GET", "/v1/households?community=b", a_duty)).json()["items"] == []
    visit = await world.call(
        "POST", "/v1/households/b/b1/3-301/visits", a_duty, {"condition": "good"}
    )
    assert visit.status_code == 404
    refused = world.audit.query(action="cross_tenant")
    assert len(refused) == 2
    assert all(r.community == "b" and r.result == "refused" for r in refused)


async def test_a_care_worker_records_visits_and_sees_what_is_due(world: _World) -> None:
    await _register(
        world,
        household("3-301"),
        household("3-302"),
        household("3-303"),
        household("3-304", worker="li-hua"),
    )
    wang = world.token("care_worker", ["a"], "wang-fang")
    # 3-302 was visited last month (within 30 days): due; 3-303 never: overdue
    last_month = {"at": (NOW - timedelta(days=20)).isoformat(), "condition": "good"}
    old = await world.call("POST", "/v1/households/a/b1/3-302/visits", wang, last_month)
    assert old.status_code == 201, old.text
    visit = await world.call(
        "POST",
        "/v1/households/a/b1/3-301/visits",
        wang,
        {"condition": "poor", "note": "膝盖疼、需要复诊", "follow_up": True},
    )
    assert visit.status_code == 201, visit.text
    body = visit.json()
    assert (body["worker"], body["worker_name"], body["follow_up"]) == ("wang-fang", "王芳", True)
    assert body["at"] == NOW.isoformat().replace("+00:00", "Z")

    due = (await world.call("GET", "/v1/visits/due", wang)).json()
    assert [(i["unit"], i["status"]) for i in due["items"]] == [
        ("3-303", "overdue"),
        ("3-302", "due"),
        ("3-301", "visited"),
    ]
    assert (due["visited"], due["due"], due["overdue"]) == (1, 1, 1)
    assert due["month_start"] == "2026-11-30T16:00:00Z"  # midnight of Dec 1st in Shanghai

    manager = world.token("property_manager", ["a"])
    everyone = (await world.call("GET", "/v1/visits/due?worker=li-hua", manager)).json()
    assert [i["unit"] for i in everyone["items"]] == ["3-304"]

    future = {"at": (NOW + timedelta(hours=1)).isoformat(), "condition": "good"}
    assert (
        await world.call("POST", "/v1/households/a/b1/3-301/visits", wang, future)
    ).status_code == 400
    not_hers = await world.call(
        "POST", "/v1/households/a/b1/3-304/visits", wang, {"condition": "good"}
    )
    assert not_hers.status_code == 404
    platform = world.token("platform", ["a"])
    read_only = await world.call(
        "POST", "/v1/households/a/b1/3-301/visits", platform, {"condition": "good"}
    )
    assert read_only.status_code == 403

    visits = (await world.call("GET", "/v1/households/a/b1/3-301/visits", platform)).json()
    assert visits["items"][0]["note"] == ""  # masked: the note may name people
    detail = (await world.call("GET", "/v1/households/a/b1/3-301", wang)).json()
    assert detail["visit_status"] == "visited"
    assert detail["visits"][0]["note"] == "膝盖疼、需要复诊"


async def test_a_visit_an_alert_called_for_links_the_alert(world: _World) -> None:
    await _register(world, household("3-301"), household("3-302"))
    (event,) = await press_sos(world.agent, world.clock, "ce/a/b1/tuya-sos-button/sos-a-3-301")
    wang = world.token("care_worker", ["a"], "wang-fang")
    linked = await world.call(
        "POST",
        "/v1/households/a/b1/3-301/visits",
        wang,
        {"condition": "fair", "alert_id": event.alert.id},
    )
    assert linked.status_code == 201, linked.text
    assert linked.json()["alert_id"] == event.alert.id
    elsewhere = await world.call(
        "POST",
        "/v1/households/a/b1/3-302/visits",
        wang,
        {"condition": "fair", "alert_id": event.alert.id},
    )
    assert elsewhere.status_code == 400


async def test_away_until_a_date_is_kept_by_the_record_and_ends_on_it(world: _World) -> None:
    await _register(world, household("3-301"))
    duty = world.token("duty_officer", ["a"])
    until = NOW + timedelta(days=3)
    response = await world.call(
        "PUT",
        "/v1/households/a/b1/3-301/away",
        duty,
        {"away": True, "until": until.isoformat(), "reason": "住院"},
    )
    assert response.status_code == 200, response.text
    view = (await world.call("GET", "/v1/households/a/b1/3-301", duty)).json()
    assert (view["away"], view["away_reason"]) == (True, "住院")
    assert world.agent.pipeline.rules.is_away("a", "b1", "3-301")

    metrics = (await world.client.get("/metrics")).text
    assert "community_edge_households_away 1" in metrics
    assert "community_edge_household_store_problem 0.0" in metrics

    world.clock.advance(3 * 86400 + 1)
    assert await world.agent.away_keeper.check() == 1
    metrics = (await world.client.get("/metrics")).text
    assert "community_edge_households_away 0" in metrics
    assert "community_edge_households_returned_total 1" in metrics
    assert not world.agent.pipeline.rules.is_away("a", "b1", "3-301")
    back = (await world.call("GET", "/v1/households/a/b1/3-301", duty)).json()
    assert (back["away"], back["away_until"], back["away_reason"]) == (False, None, None)

    # a record written with a date (an edit, an import) is away for the rules at once
    edited = await world.call("GET", "/v1/households/a/b1/3-301", world.token("admin", ["a"]))
    manager = world.token("property_manager", ["a"])
    record = (await world.call("GET", "/v1/households/a/b1/3-301", manager)).json()
    record["away_until"] = (world.clock.now() + timedelta(days=1)).isoformat()
    assert edited.status_code == 200
    assert (
        await world.call("PUT", "/v1/households/a/b1/3-301", manager, record)
    ).status_code == 200
    assert world.agent.pipeline.rules.is_away("a", "b1", "3-301")

    past = await world.call(
        "PUT",
        "/v1/households/a/b1/3-301/away",
        duty,
        {"away": True, "until": (NOW - timedelta(days=1)).isoformat()},
    )
    assert past.status_code == 400


# -- CSV ----------------------------------------------------------------------------------------


async def test_the_register_round_trips_through_csv_with_chinese(world: _World) -> None:
    await _register(
        world,
        household(
            "3-301",
            residents=[{"name": "张桂英", "phone": "13812345678", "birth_year": 1941}],
            family=[
                {"name": "李明", "relation": "儿子", "phone": "13900001111", "person_id": "fam-1"},
                {
                    "name": "李芳",
                    "relation": "女儿",
                    "phone": "13900002222",
                    "call_after_minutes": None,
                },
            ],
            device_ids=["sos-1", "door-1"],
            away_until=(NOW + timedelta(days=2)).isoformat(),
            away_reason="住院、胸闷",
            note="耳背、敲门要大声",
        ),
        household(
            "3-302",
            living_alone=False,
            care_level="dependent",
            care_worker=None,
            residents=[{"name": "赵大爷"}, {"name": "赵大妈", "phone": "13600000000"}],
            family=[],
            device_ids=[],
        ),
    )
    manager = world.token("property_manager", ["a"])
    exported = await world.call("GET", "/v1/households/export", manager)
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert "filename*=UTF-8''" in exported.headers["content-disposition"]
    data = exported.content
    assert data.startswith("\ufeff".encode())  # Excel reads UTF-8 only with the mark
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:4] == ["小区", "楼栋", "楼层", "房号"]
    assert rows[1][6] == "张桂英:13812345678:1941"
    assert rows[1][7] == "李明:儿子:13900001111:10:fam-1; 李芳:女儿:13900002222:-"

    before = {h.id: h for h in world.agent.households.list()}
    for hid in before:
        community, building, unit = hid.split("/")
        await world.call("DELETE", f"/v1/households/{community}/{building}/{unit}", manager)
    imported = await world.call(
        "POST",
        "/v1/households/import?community=a",
        manager,
        content=data,
        headers={"Content-Type": "text/csv"},
    )
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"imported": 2, "problems": []}
    after = {h.id: h for h in world.agent.households.list()}
    strip = {"updated_at", "revision"}
    assert {k: v.model_dump(exclude=strip) for k, v in after.items()} == {
        k: v.model_dump(exclude=strip) for k, v in before.items()
    }
    assert [r.action for r in world.audit.query(action="export_personal_data")] == [
        "export_personal_data"
    ]


async def test_an_export_is_masked_unless_the_role_allows(world: _World) -> None:
    await _register(world, household("3-301"))
    admin = world.token("admin", ["a"])
    data = (await world.call("GET", "/v1/households/export", admin)).content.decode("utf-8-sig")
    assert "张桂英" not in data
    assert "13812345678" not in data
    assert "3-301" not in data.replace("sos-a-3-301", "")  # device ids are not masked
    assert "张*英:138****5678:1941" in data
    assert world.audit.query(action="export_masked")


async def test_an_import_with_problems_names_their_lines_and_stores_nothing(
    world: _World,
) -> None:
    text = (
        "小区,楼栋,楼层,房号,独居,照护等级,居民,家属,设备\n"
        "a,b1,1,1-101,是,自理,王奶奶:13812345678,,sos-1\n"
        "a,b1,1,1-102,也许,自理,,,\n"  # line 3: 独居
        "\n"
        "a,b1,1,1-103,否,卧床,,,\n"  # line 5: care level
        "a,b1,1,1-104,否,,,李明:儿子:打电话,\n"  # line 6: phone
        "a,b1,1,1-105,否,,,,sos-1\n"  # line 7: a device twice
        "b,b1,1,1-106,否,,,,\n"  # line 8: not the caller's community
    )
    manager = world.token("property_manager", ["a"])
    response = await world.call(
        "POST", "/v1/households/import?community=a", manager, content=text.encode("gb18030")
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["message"] == "5 problem(s): nothing was imported"
    problems = [(int(d["line"]), d["column"]) for d in error["details"]]
    assert problems == [(3, "独居"), (5, "照护等级"), (6, "家属.0.phone"), (7, "设备"), (8, "小区")]
    assert "13812345678" not in response.text  # problems name fields, never the values
    assert world.agent.households.count() == 0

    unknown = await world.call(
        "POST", "/v1/households/import?community=a", manager, content="小区,楼栋,门牌\n".encode()
    )
    assert unknown.status_code == 422
    assert "门牌" in unknown.json()["error"]["message"]
    duty = world.token("duty_officer", ["a"])
    refused = await world.call(
        "POST", "/v1/households/import?community=a", duty, content=text.encode()
    )
    assert refused.status_code == 403
    other = await world.call(
        "POST", "/v1/households/import?community=b", manager, content=text.encode()
    )
    assert other.status_code == 404


async def test_a_care_worker_marks_her_household_away_and_back(world: _World) -> None:
    await _register(world, household("3-301"), household("3-302", worker="li-hua"))
    wang = world.token("care_worker", ["a"], "wang-fang")
    until = (NOW + timedelta(days=5)).isoformat()
    body = {"away": True, "until": until, "reason": "探亲"}
    mine = await world.call("PUT", "/v1/households/a/b1/3-301/away", wang, body)
    assert mine.status_code == 200, mine.text
    assert world.agent.pipeline.rules.is_away("a", "b1", "3-301")
    not_hers = await world.call("PUT", "/v1/households/a/b1/3-302/away", wang, body)
    unknown = await world.call("PUT", "/v1/households/a/b1/3-399/away", wang, body)
    assert (not_hers.status_code, unknown.status_code) == (404, 404)
    assert not world.agent.pipeline.rules.is_away("a", "b1", "3-302")
    family = world.token("family", ["a"], "fam-3-301")
    refused = await world.call("PUT", "/v1/households/a/b1/3-301/away", family, {"away": False})
    assert refused.status_code == 403
    back = await world.call("PUT", "/v1/households/a/b1/3-301/away", wang, {"away": False})
    assert back.json() == {"away": False, "until": None, "reason": None}
    record = world.agent.households.get("a/b1/3-301")
    assert record is not None
    assert (record.away_until, record.away_reason) == (None, None)


async def test_text_people_read_is_checked_and_a_formula_stays_text_in_excel(world: _World) -> None:
    manager = world.token("property_manager", ["a"])
    bidi = household("3-309", residents=[{"name": "张\u202e英"}])
    refused = await world.call("POST", "/v1/households", manager, bidi)
    assert refused.status_code == 422
    assert "U+202E" in refused.json()["error"]["message"]
    colon = household("3-309", family=[{"name": "李:明", "phone": "13900001111"}])
    refused = await world.call("POST", "/v1/households", manager, colon)
    assert refused.status_code == 422
    assert "family.0.name" in refused.json()["error"]["message"]
    formula = household(
        "3-301",
        residents=[{"name": '=HYPERLINK("x.cn","点我")', "phone": "+8613812345678"}],
        note="@SUM(1)",
    )
    assert (await world.call("POST", "/v1/households", manager, formula)).status_code == 201
    data = (await world.call("GET", "/v1/households/export", manager)).content
    row = next(csv.reader(io.StringIO(data.decode("utf-8-sig").splitlines()[1])))
    assert row[6].startswith("'=HYPERLINK")  # Excel shows it, does not run it
    assert row[14] == "'@SUM(1)"
    await world.call("DELETE", "/v1/households/a/b1/3-301", manager)
    imported = await world.call("POST", "/v1/households/import?community=a", manager, content=data)
    assert imported.status_code == 200, imported.text
    back = world.agent.households.get("a/b1/3-301")
    assert back is not None
    assert back.residents[0].name == '=HYPERLINK("x.cn","点我")'
    assert back.residents[0].phone == "+8613812345678"
    assert back.note == "@SUM(1)"

    wang = world.token("care_worker", ["a"], "wang-fang")
    bad_note = await world.call(
        "POST", "/v1/households/a/b1/3-301/visits", wang, {"condition": "good", "note": "a\x1bb"}
    )
    assert bad_note.status_code == 422
