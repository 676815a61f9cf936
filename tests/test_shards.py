"""Shards (`community-edge run --shards N`): the ownership rule, the supervisor's plan, and the
sharded gateway end to end against a real mosquitto, with real processes killed by SIGKILL."""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.decode import ProfileRegistry, default_profile_dir
from edge.enrich import DeviceRegistry, Shard, ShardFilter, owned_registry, place_hash
from edge.model import DeviceRef
from gateway.metrics import merge_shards
from gateway.settings import ConfigurationError, Settings, load_settings
from gateway.shards import plan
from gateway.tokens import open_tokens
from tests.agent_process import TOKEN, AgentProcess, wait_for
from tests.mqtt_publisher import Publisher
from tests.servers import MosquittoFactory

PROFILES = ProfileRegistry.load(default_profile_dir())
START_S = 120.0  # N Python processes starting on a shared 2-core machine


class ShardedGateway(AgentProcess):
    """`community-edge run --shards N`; the supervisor's shard 0 answers on `url`."""

    def __init__(
        self, data_dir: Path, mqtt_url: str, shards: int = 2, extra: list[str] | None = None
    ) -> None:
        super().__init__(data_dir, mqtt_url, ["--shards", str(shards), *(extra or [])])

    def wait_api(self, within_s: float = START_S) -> None:
        super().wait_api(within_s)

    def wait_ready(self, within_s: float = START_S) -> None:
        super().wait_ready(within_s)


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(None, {"data_dir": tmp_path / "data", **overrides})


# -- the ownership rule ------------------------------------------------------------------------


def test_the_place_hash_is_the_same_in_every_process_and_release() -> None:
    # a changed hash would move buildings between shards on upgrade: their open alerts and
    # correlation state would stay behind in the old shard
    assert place_hash("c1", "b1") == 0xA4EAB46D37B5FE0B
    assert place_hash("c1", "b1") != place_hash("c1", "b2")
    assert place_hash("c1", "b1") != place_hash("c2", "b1")


def test_every_building_has_exactly_one_owner_and_shards_share_the_load() -> None:
    shards = [Shard(i, 4) for i in range(4)]
    load = [0, 0, 0, 0]
    for b in range(400):
        owners = [s.index for s in shards if s.owns("c1", f"b{b}")]
        assert len(owners) == 1
        load[owners[0]] += 1
    assert min(load) > 60, load  # 100 each on average


def test_a_shard_is_checked() -> None:
    with pytest.raises(ValueError, match="index < count"):
        Shard(2, 2)
    with pytest.raises(ConfigurationError, match=r"shard\.index 3 must be below shard\.count 2"):
        load_settings(None, {"shard.index": 3, "shard.count": 2})


def test_the_filter_reads_the_owner_from_the_topic_alone() -> None:
    registry = DeviceRegistry()
    filters = [ShardFilter(Shard(i, 3), PROFILES, lambda: registry) for i in range(3)]
    topics = [
        *(f"ce/c1/b{b}/zigbee-pir-motion/pir-{b}" for b in range(30)),
        *(f"ce/c1/b{b}/tuya-sos-button/sos-{b}/availability" for b in range(30)),
        "not/a/device/topic",
        "ce/c1/b1",
    ]
    for topic in topics:
        assert sum(f.owns_topic(topic) for f in filters) == 1, topic
    # every topic of one building is one shard's: its motion sensor and its SOS button
    for b in range(30):
        motion = [f.owns_topic(f"ce/c9/b{b}/zigbee-pir-motion/pir-{b}") for f in filters]
        sos = [f.owns_topic(f"ce/c9/b{b}/tuya-sos-button/sos-{b}") for f in filters]
        assert motion == sos
    assert sum(f.dropped for f in filters) == 2 * (len(topics) + 60)


def test_a_shard_watches_only_the_devices_of_its_buildings() -> None:
    devices = {
        f"pir-{n}": DeviceRef(f"pir-{n}", "zigbee-pir-motion", "motion", "c1", f"b{n}", slot=n)
        for n in range(20)
    }
    whole = DeviceRegistry(devices)
    parts = [owned_registry(whole, Shard(i, 2)) for i in range(2)]
    assert sorted(d.device_id for p in parts for d in p.devices()) == sorted(devices)
    for part in parts:
        assert [d.slot for d in part.devices()] == list(range(len(part)))  # liveness slots
        assert not part.open_enrollment


# -- the supervisor's plan ---------------------------------------------------------------------


def test_shards_have_their_own_client_id_data_dir_and_slice(tmp_path: Path) -> None:
    settings = _settings(tmp_path, **{"mqtt.client_id": "gw-a"})
    shards = plan(settings, 3, ["--mqtt-url", "mqtt://127.0.0.1:1883"])
    assert [s.client_id for s in shards] == ["gw-a-s0", "gw-a-s1", "gw-a-s2"]
    assert [s.data_dir for s in shards] == [
        settings.data_dir,
        settings.data_dir / "shard-1",
        settings.data_dir / "shard-2",
    ]
    assert [(s.index, s.count) for s in shards] == [(0, 3), (1, 3), (2, 3)]
    # the default id is the host's, so two gateways never share a session either
    default = plan(_settings(tmp_path), 2, [])
    assert default[0].client_id != default[1].client_id
    assert os.uname().nodename in default[0].client_id


def test_two_gateways_split_a_community_and_their_shards_split_each_half(tmp_path: Path) -> None:
    gateway_b = plan(_settings(tmp_path, **{"shard.index": 1, "shard.count": 2}), 3, [])
    assert [(s.index, s.count) for s in gateway_b] == [(1, 6), (3, 6), (5, 6)]
    for b in range(200):
        on_b = Shard(1, 2).owns("c1", f"b{b}")
        local = [s for s in gateway_b if Shard(s.index, s.count).owns("c1", f"b{b}")]
        assert len(local) == (1 if on_b else 0)


# -- the sharded gateway, end to end -----------------------------------------------------------


def _building_of(index: int, community: str) -> str:
    """A building of `community` that shard `index` of 2 owns."""
    return next(f"b{n}" for n in range(100) if Shard(index, 2).owns(community, f"b{n}"))


def _stored(data_dir: Path) -> dict[str, int]:
    """Readings per building in one shard's embedded store."""
    path = data_dir / "readings.db"
    if not path.exists():
        return {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        rows = db.execute("SELECT building, COUNT(*) FROM readings GROUP BY building").fetchall()
    return {building: count for building, count in rows}


def _wait_shard_ready(data_dir: Path) -> str:
    """Wait until a shard's internal API says it is ready (its MQTT sessions are connected, so
    the broker queues its messages from now on); return that API's address."""
    wait_for(lambda: (data_dir / "api-url").exists(), START_S, f"{data_dir.name}'s API")
    internal = (data_dir / "api-url").read_text().strip()
    wait_for(
        lambda: httpx.get(f"{internal}/readyz", timeout=2).status_code == 200,
        START_S,
        f"{data_dir.name} ready",
    )
    return internal


def _shard_pid(data_dir: Path) -> int:
    """The pid the shard's lock file names (0 while a starting shard writes it)."""
    words = (data_dir / "agent.lock").read_text().split()
    return int(words[-1]) if words else 0


def test_a_shard_killed_mid_burst_is_restarted_and_loses_nothing(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker = mosquitto_factory(extra_config=["max_queued_messages 100000"])
    community = "shard-kill"
    buildings = [f"b{n}" for n in range(12)]
    per_device = 250
    start_ms = int(time.time() * 1000) - 600_000  # a sane device time: the reading's own key
    messages = [
        (
            f"ce/{community}/{b}/zigbee-pir-motion/pir-{b}-{d}",
            {"occupancy": n % 2 == 0, "battery": 90, "ts": start_ms + n, "seq": n},
        )
        for n in range(per_device)
        for b in buildings
        for d in range(2)
    ]
    data = tmp_path / "data"
    with ShardedGateway(data, broker.url) as agent:
        _wait_shard_ready(data / "shard-1")  # its session exists: the broker keeps its messages
        pids = [_shard_pid(data / "shard-1")]
        with Publisher(broker.url, max_inflight=1000, timeout=60) as publisher:
            sender = threading.Thread(target=publisher.send, args=(messages,))
            sender.start()
            # SIGKILL shard 1 while it is storing the burst, then again after its restart
            theirs = sum(2 * per_device for b in buildings if Shard(1, 2).owns(community, b))
            for stored_at_least in (theirs // 5, theirs * 3 // 5):
                wait_for(
                    lambda at=stored_at_least: sum(_stored(data / "shard-1").values()) >= at,
                    START_S,
                    f"shard 1 storing {stored_at_least}",
                )
                os.kill(pids[-1], signal.SIGKILL)
                pids.append(
                    wait_for(
                        lambda: (
                            _shard_pid(data / "shard-1") not in (0, *pids)
                            and _shard_pid(data / "shard-1")
                        ),
                        START_S,
                        "shard 1 restarted",
                    )
                )
            sender.join()
            assert publisher.wait() == len(messages)
        expected = {b: 2 * per_device for b in buildings}
        stores = [data, data / "shard-1"]

        def everything_stored() -> bool:
            merged: dict[str, int] = defaultdict(int)
            for store in stores:
                for building, count in _stored(store).items():
                    merged[building] += count
            return dict(merged) == expected or dict(merged)  # type: ignore[return-value]

        wait_for(lambda: everything_stored() is True, within_s=90, what="every reading stored")
        per_shard = [_stored(store) for store in stores]
        # a building's readings all went to one shard, the one the rule names; both had work
        for index, stored in enumerate(per_shard):
            for building in stored:
                assert Shard(index, 2).owns(community, building), (index, building)
        assert all(per_shard), per_shard
        assert sum(sum(s.values()) for s in per_shard) == len(messages)  # no more, no less
        # shard 0 ran throughout: it left exactly shard 1's messages to it, unread
        dropped = agent.metrics()['community_edge_shard_dropped_total{shard="0/2"}']
        assert dropped == sum(per_shard[1].values())
        health = agent.get("/healthz")
        assert health["shard"] == {"index": 0, "count": 2, "dropped": dropped}
        assert health["mqtt"]["sessions"]["telemetry"]["client_id"].endswith("-s0")


def test_one_api_lists_and_acts_on_the_alerts_of_both_shards(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker = mosquitto_factory()
    community = "shard-api"
    # one building owned by each shard
    owned = {index: _building_of(index, community) for index in range(2)}
    data = tmp_path / "data"
    with ShardedGateway(data, broker.url) as agent:
        internal = _wait_shard_ready(data / "shard-1")
        client_ids = {
            agent.get("/healthz")["mqtt"]["sessions"]["alarm"]["client_id"],
            httpx.get(f"{internal}/healthz", headers=agent.headers, timeout=5).json()["mqtt"][
                "sessions"
            ]["alarm"]["client_id"],
        }
        assert len(client_ids) == 2, client_ids
        with Publisher(broker.url) as publisher:
            for building in owned.values():
                publisher.publish(
                    f"ce/{community}/{building}/tuya-sos-button/sos-{building}",
                    {"action": "emergency", "battery": 80, "linkquality": 144},
                )
        alerts = wait_for(
            lambda: (
                items
                if len(items := agent.get("/v1/alerts", community=community)["items"]) == 2
                else None
            ),
            what="both shards' SOS alerts on shard 0's API",
        )
        assert {a["building"] for a in alerts} == set(owned.values())
        # paging walks both stores in one order
        first = agent.get("/v1/alerts", community=community, limit=1)
        second = agent.get("/v1/alerts", community=community, limit=1, cursor=first["next_cursor"])
        assert {first["items"][0]["id"], second["items"][0]["id"]} == {a["id"] for a in alerts}
        # an alert of shard 1, acknowledged through shard 0's API, by the shard that owns it
        theirs = next(a for a in alerts if a["building"] == owned[1])
        response = agent.post(f"/v1/alerts/{theirs['id']}/ack", {"note": "on my way"})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "acknowledged"
        detail = agent.get(f"/v1/alerts/{theirs['id']}")
        assert detail["alert"]["status"] == "acknowledged"
        assert [e["kind"] for e in detail["history"]] == ["opened", "acknowledged"]
        again = agent.post(f"/v1/alerts/{theirs['id']}/ack")
        assert again.status_code == 409


def test_a_shard_that_refuses_its_settings_stops_the_supervisor(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    import subprocess
    import sys

    broker = mosquitto_factory()
    data = tmp_path / "data"
    data.mkdir()
    busy = ShardedGateway(data / "shard-1", broker.url, shards=1)  # holds shard 1's data dir
    with busy:
        started = time.monotonic()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "run",
                "--shards",
                "2",
                "--mqtt-url",
                broker.url,
                "--data-dir",
                str(data),
                "--api-port",
                "0",
                "--api-token",
                TOKEN,
            ],
            capture_output=True,
            text=True,
            timeout=START_S,
            check=False,
        )
    assert result.returncode == 2, result.stderr
    assert "is in use" in result.stderr
    assert "stopping every shard" in result.stderr
    assert time.monotonic() - started < START_S


def test_silences_households_and_the_live_stream_reach_every_shard(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker = mosquitto_factory()
    community = "shard-share"
    theirs = _building_of(1, community)
    data = tmp_path / "data"
    with ShardedGateway(data, broker.url) as agent:
        internal = _wait_shard_ready(data / "shard-1")

        def on_shard_1(path: str) -> httpx.Response:
            return httpx.get(f"{internal}{path}", headers=agent.headers, timeout=5)

        # one household register: made through shard 0, read by shard 1 (sign of life, family)
        home: dict[str, object] = {"community": community, "building": theirs, "unit": "1-101"}
        home |= {"living_alone": True, "residents": [{"name": "张桂英"}]}
        created = httpx.post(f"{agent.url}/v1/households", json=home, headers=agent.headers)
        assert created.status_code == 201, created.text
        place = f"/v1/households/{community}/{theirs}/1-101"
        assert on_shard_1(place).status_code == 200
        # away (no date: only the rules' flag says so) through shard 0, held by shard 1's rules
        away = httpx.put(
            f"{agent.url}{place}/away", json={"away": True}, headers=agent.headers, timeout=10
        )
        assert away.status_code == 200, away.text
        assert away.json()["away"] is True
        assert on_shard_1(place).json()["away"] is True
        assert agent.get(place)["away"] is True

        # the live stream of shard 0 carries shard 1's events
        streamed: list[dict[str, object]] = []
        listening = threading.Event()

        def listen() -> None:
            with httpx.stream(
                "GET",
                f"{agent.url}/v1/alerts/stream",
                params={"community": community},
                headers=agent.headers,
                timeout=60.0,
            ) as response:
                for line in response.iter_lines():
                    if line.startswith(": connected"):
                        listening.set()  # subscribed
                    if line.startswith("data: "):
                        streamed.append(json.loads(line.removeprefix("data: ")))
                        return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert listening.wait(10)

        # a silence made through shard 0 holds back an SOS handled by shard 1
        silence = agent.post(
            "/v1/silences",
            {
                "community": community,
                "device_id": f"sos-{theirs}",
                "ends_at": "2099-01-01T00:00:00+00:00",
                "reason": "按钮测试",
            },
        )
        assert silence.status_code == 201, silence.text
        silence_id = silence.json()["id"]
        wait_for(
            lambda: any(s["id"] == silence_id for s in on_shard_1("/v1/silences").json()["items"]),
            what="shard 1 following shard 0's silence",
        )
        with Publisher(broker.url) as publisher:
            publisher.publish(
                f"ce/{community}/{theirs}/tuya-sos-button/sos-{theirs}",
                {"action": "emergency", "battery": 80, "linkquality": 144},
            )
        alert = wait_for(
            lambda: next(iter(agent.get("/v1/alerts", community=community)["items"]), None),
            what="shard 1's SOS on shard 0's API",
        )
        assert alert["building"] == theirs
        assert alert["silenced_by"] == silence_id
        listener.join(30)
        assert streamed, "nothing on shard 0's stream"
        assert streamed[0]["alert"]["id"] == alert["id"]  # type: ignore[index]
        assert streamed[0]["kind"] == "opened"
        # shard 1's devices and their liveness, on shard 0's API
        device = wait_for(
            lambda: next(iter(agent.get("/v1/devices", community=community)["items"]), None),
            what="shard 1's SOS button on shard 0's device list",
        )
        assert (device["device_id"], device["status"]) == (f"sos-{theirs}", "online")
        detail = agent.get(f"/v1/devices/sos-{theirs}")
        assert detail["building"] == theirs
        assert [a["id"] for a in detail["open_alerts"]] == [alert["id"]]
        # the response figures count shard 1's alert too
        (figures,) = agent.get("/v1/summary", community=community)["items"]
        assert figures["opened"] == 1
        assert figures["open_by_severity"] == {"critical": 1}
        # shard 1's incident is listed by shard 0 and acknowledged by the shard that owns it
        (incident,) = agent.get("/v1/incidents", community=community)["items"]
        assert incident["id"] == alert["incident_id"]
        assert agent.get(f"/v1/incidents/{incident['id']}")["incident"]["building"] == theirs
        taken = agent.post(f"/v1/incidents/{incident['id']}/ack", {"note": "在路上"})
        assert taken.status_code == 200, taken.text
        assert taken.json()["status"] == "acknowledged"
        assert agent.get(f"/v1/alerts/{alert['id']}")["alert"]["status"] == "acknowledged"
        again = agent.post(f"/v1/incidents/{incident['id']}/ack")
        assert again.status_code == 409
        # the silence ended through shard 0 ends on shard 1 too
        ended = httpx.delete(f"{agent.url}/v1/silences/{silence_id}", headers=agent.headers)
        assert ended.status_code == 200, ended.text
        wait_for(
            lambda: not on_shard_1("/v1/silences").json()["items"],
            what="shard 1 following the silence's end",
        )
        (followed,) = on_shard_1("/v1/silences?all=true").json()["items"]
        assert followed["expired_at"] == ended.json()["expired_at"]


def test_shard_metrics_are_merged_by_family_and_labelled_by_shard() -> None:
    own = (
        "# HELP community_edge_outbox_depth entries\n# TYPE community_edge_outbox_depth gauge\n"
        'community_edge_outbox_depth{lane="alarm",sink="tsdb"} 3\n'
        "# HELP community_edge_households households\n# TYPE community_edge_households gauge\n"
        "community_edge_households 7\n"
        "# HELP community_edge_shard_dropped_total d\n# TYPE community_edge_shard_dropped_total counter\n"
        'community_edge_shard_dropped_total{shard="0/2"} 5\n'
    )
    sibling = own.replace(" 3\n", " 4\n").replace("0/2", "1/2")
    merged = merge_shards(own, [("shard-1", sibling), ("shard-2", None)], own_name="shard-0")
    lines = merged.splitlines()
    assert lines.count("# TYPE community_edge_outbox_depth gauge") == 1
    assert 'community_edge_outbox_depth{shard="shard-0",lane="alarm",sink="tsdb"} 3' in lines
    assert 'community_edge_outbox_depth{shard="shard-1",lane="alarm",sink="tsdb"} 4' in lines
    assert 'community_edge_households{shard="shard-1"} 7' in lines
    # a sample that names its shard already keeps its own label
    assert 'community_edge_shard_dropped_total{shard="1/2"} 5' in lines
    # each family's samples follow its own HELP and TYPE
    at = lines.index("# TYPE community_edge_households gauge")
    assert lines[at + 1 : at + 3] == [
        'community_edge_households{shard="shard-0"} 7',
        'community_edge_households{shard="shard-1"} 7',
    ]
    assert 'community_edge_shard_up{shard="shard-2"} 0.0' in lines
    assert 'community_edge_shard_up{shard="shard-1"} 1.0' in lines


def test_shard_0_answers_for_every_shard_s_health_readiness_and_metrics(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker = mosquitto_factory()
    data = tmp_path / "data"
    with ShardedGateway(data, broker.url) as agent:
        _wait_shard_ready(data / "shard-1")
        health = agent.get("/healthz")
        assert health["status"] == "ok", health
        sibling = health["shards"]["shard-1"]
        assert sibling["status"] == "ok"
        assert sibling["mqtt"]["sessions"]["alarm"]["client_id"].endswith("-s1-alarm")
        metrics = agent.metrics()
        assert metrics['community_edge_shard_up{shard="shard-1"}'] == 1.0
        assert metrics['community_edge_mqtt_connected{shard="shard-1",lane="alarm"}'] == 1.0
        assert metrics['community_edge_mqtt_connected{shard="shard-0",lane="alarm"}'] == 1.0

        # a shard that hangs (SIGSTOP: alive to the supervisor, deaf to everyone) degrades the
        # gateway, and readiness names it; once it runs again, all is well
        pid = _shard_pid(data / "shard-1")
        os.kill(pid, signal.SIGSTOP)
        try:
            health = agent.get("/healthz")
            assert health["status"] == "degraded"
            assert health["shards"]["shard-1"]["status"] == "unreachable"
            ready = httpx.get(f"{agent.url}/readyz", timeout=10)
            assert ready.status_code == 503
            assert any(p.startswith("shard-1: ") for p in ready.json()["problems"]), ready.json()
            assert agent.metrics()['community_edge_shard_up{shard="shard-1"}'] == 0.0
            anonymous = httpx.get(f"{agent.url}/healthz", timeout=10).json()
            assert anonymous == {"status": "degraded"}  # details only for admins
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_for(lambda: agent.get("/healthz")["status"] == "ok", 30, "shard 1 healthy again")
        assert httpx.get(f"{agent.url}/readyz", timeout=10).status_code == 200


def test_shard_0_lists_the_unregistered_devices_of_every_shard(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker = mosquitto_factory()
    community = "shard-unreg"
    owned = {index: _building_of(index, community) for index in range(2)}
    devices = tmp_path / "devices.csv"
    devices.write_text(
        "device_id,model,community,building,unit,install_date,resident_ref,emergency_contacts\n"
        f"sos-known,tuya-sos-button,{community},{owned[0]},1-101,,,\n",
        encoding="utf-8",
    )
    data = tmp_path / "data"
    with ShardedGateway(data, broker.url, extra=["--devices", str(devices)]) as agent:
        internal = _wait_shard_ready(data / "shard-1")
        topics = {
            index: f"ce/{community}/{building}/tuya-sos-button/new-{index}"
            for index, building in owned.items()
        }
        with Publisher(broker.url) as publisher:
            for topic in topics.values():
                publisher.publish(topic, {"battery": 60})
        # shard 1 placed nothing of shard 0's, and holds its own unknown device
        wait_for(
            lambda: (
                [
                    e["topic"]
                    for e in httpx.get(
                        f"{internal}/v1/devices/unregistered", headers=agent.headers, timeout=5
                    ).json()
                ]
                == [topics[1]]
            ),
            what="shard 1's unknown device on its own API",
        )
        listed = wait_for(
            lambda: found if len(found := agent.get("/v1/devices/unregistered")) == 2 else None,
            within_s=30,
            what="both shards' unknown devices on shard 0's API",
        )
        assert {(e["topic"], e["cause"], e["count"]) for e in listed} == {
            (topics[0], "unknown_device", 1),
            (topics[1], "unknown_device", 1),
        }
        for entry in listed:  # the sibling's sample comes through its file intact
            assert json.loads(base64.b64decode(entry["sample_base64"])) == {"battery": 60}


def _last_sign(rhythm: dict[str, Any]) -> str | None:
    """When the sign-of-life rule last saw her (None: not yet)."""
    rule = next(r for r in rhythm["rules"] if r["rule"] == "no-sign-of-life")
    return rule["last_sign"]  # type: ignore[no-any-return]


def test_shard_0_reads_dead_letters_readings_and_rhythms_of_every_shard(
    tmp_path: Path, mosquitto_factory: MosquittoFactory
) -> None:
    broker = mosquitto_factory()
    community, other = "shard-reads", "shard-elsewhere"
    ours, theirs = _building_of(0, community), _building_of(1, community)
    elsewhere = _building_of(1, other)
    data = tmp_path / "data"
    with ShardedGateway(data, broker.url) as agent:
        internal = _wait_shard_ready(data / "shard-1")
        tokens = open_tokens(data)  # shard 0's, as `community-edge tokens create` writes them
        try:
            admin_of_one = tokens.create("admin", [community], "one community's admin")[1]
        finally:
            tokens.close()

        def get(path: str, token: str = TOKEN, /, **params: Any) -> httpx.Response:
            return httpx.get(
                f"{agent.url}{path}",
                params=params,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )

        # a living-alone household in a building of shard 1, made through shard 0
        home: dict[str, object] = {"community": community, "building": theirs, "unit": "1-101"}
        home |= {"living_alone": True, "residents": [{"name": "张桂英"}]}
        home |= {"device_ids": [f"pir-{community}-{theirs}"]}
        created = httpx.post(f"{agent.url}/v1/households", json=home, headers=agent.headers)
        assert created.status_code == 201, created.text
        rhythm = f"/v1/households/{community}/{theirs}/1-101/rhythm"
        wait_for(
            lambda: (
                {r["rule"] for r in get(rhythm).json()["rules"]}
                == {"no-sign-of-life", "water-idle"}
            ),
            what="shard 1's sign-of-life rules watching the household, through shard 0",
        )

        # malformed payloads (dead letters) in both shards' buildings and another community's,
        # and readings of a motion sensor in each
        with Publisher(broker.url) as publisher:
            for building, where in ((theirs, community), (ours, community), (elsewhere, other)):
                publisher.publish(
                    f"ce/{where}/{building}/tuya-sos-button/sos-{building}",
                    '{"action": "emergency", "note": "张桂英 13800001111'.encode(),
                )
            for building, where in ((theirs, community), (ours, community), (elsewhere, other)):
                publisher.publish(
                    f"ce/{where}/{building}/zigbee-pir-motion/pir-{where}-{building}",
                    {"occupancy": True, "battery": 90},
                )

        # dead letters: every shard's, newest received first, each id naming its shard
        letters = wait_for(
            lambda: found if len(found := get("/v1/dead-letters").json()) == 3 else None,
            what="three dead letters, two of them shard 1's, on shard 0's API",
        )
        assert {d["topic"].split("/")[2] for d in letters} == {theirs, ours, elsewhere}
        assert sorted(d["id"] % 64 for d in letters) == [0, 1, 1]
        times = [d["received_at"] for d in letters]
        assert times == sorted(times, reverse=True)
        for letter in letters:  # names and phones masked, whichever shard kept the letter
            shown = base64.b64decode(letter["payload_base64"]).decode()
            assert "张桂英" not in shown
            assert "13800001111" not in shown
        # paging one by one walks the same list, across shards, without repeats
        walked: list[int] = []
        while page := get(
            "/v1/dead-letters", limit=1, **({"before_id": walked[-1]} if walked else {})
        ).json():
            walked.append(page[0]["id"])
        assert walked == [d["id"] for d in letters]
        # a community's admin sees its community's, in both shards, and no other's
        scoped = get("/v1/dead-letters", admin_of_one).json()
        assert [d["id"] for d in scoped] == [
            d["id"] for d in letters if d["topic"].split("/")[1] == community
        ]

        # readings of a device of shard 1, from its store, through shard 0 (no time-series store)
        device = f"pir-{community}-{theirs}"
        wait_for(
            lambda: get("/v1/devices", community=community, building=theirs).json()["items"],
            within_s=30,
            what="shard 1's motion sensor known to shard 0 (by its liveness file)",
        )
        (reading,) = get("/v1/readings", device_id=device).json()["items"]
        assert (reading["device_id"], reading["building"]) == (device, theirs)
        assert reading["fields"]["motion"] is True
        # without a device: every shard's, within the caller's communities
        both = get("/v1/readings", admin_of_one, category="motion").json()
        assert {r["building"] for r in both["items"]} == {ours, theirs}
        assert both["unanswered"] == []
        assert get("/v1/readings", admin_of_one, device_id=f"pir-{other}-{elsewhere}").json() == {
            "items": [],
            "unanswered": [],
        }

        # the household's rhythm is shard 1's: a check-in recorded through shard 0 is its sign
        signed = httpx.post(
            f"{agent.url}/v1/households/{community}/{theirs}/1-101/signs",
            json={"source": "check_in"},
            headers=agent.headers,
            timeout=30,
        )
        assert signed.status_code == 200, signed.text
        learned = get(rhythm).json()
        assert _last_sign(learned) is not None
        assert learned == httpx.get(f"{internal}{rhythm}", headers=agent.headers).json()

        # a shard that does not answer is named: 503 where its part cannot be left out
        pid = _shard_pid(data / "shard-1")
        os.kill(pid, signal.SIGSTOP)
        try:
            refused = get("/v1/dead-letters")
            assert refused.status_code == 503
            assert "shard-1" in refused.json()["error"]["message"]
            assert get(rhythm).status_code == 503
            assert get("/v1/readings", device_id=device).status_code == 503  # shard 1's own
            partial = get("/v1/readings", category="motion", community=community).json()
            assert [r["building"] for r in partial["items"]] == [ours]
            assert partial["unanswered"] == ["shard-1"]
        finally:
            os.kill(pid, signal.SIGCONT)
