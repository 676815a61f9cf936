"""AlertApiSink against a real central API (`community-edge api` on SQLite), and its settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.errors import SinkRejected, SinkUnavailable
from edge.sinks import AlertApiSink
from gateway.settings import ConfigurationError, load_settings
from tests.central_factories import opened
from tests.central_process import CentralApiProcess
from tests.servers import free_port


@pytest.fixture(scope="module")
def central(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CentralApiProcess]:
    base = tmp_path_factory.mktemp("central")
    with CentralApiProcess(base / "api", f"sqlite:///{base / 'central.db'}") as api:
        yield api


async def test_batches_are_delivered_and_replays_stored_once(central: CentralApiProcess) -> None:
    sink = AlertApiSink("central", central.url, central.create_token("edge_agent", "sink-a"))
    reader = central.create_token("duty_officer", "sink-a")
    batch = [opened(n, "sink-a") for n in range(1500)]  # about 1.2 MB: sent as several requests
    try:
        await sink.write_events(batch)
        await sink.write_events(batch[:10])  # the outbox may deliver again: harmless
        await sink.write_events([])
        await sink.write_readings([])
    finally:
        await sink.close()
    seen: list[str] = []
    cursor = None
    while True:
        page = central.get(
            reader, "/v1/alerts", limit=500, **({"cursor": cursor} if cursor else {})
        )
        seen += [a["id"] for a in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert len(seen) == len(set(seen)) == 1500


async def test_a_wrong_token_or_a_foreign_community_is_retried(central: CentralApiProcess) -> None:
    foreign = AlertApiSink("central", central.url, central.create_token("edge_agent", "other"))
    revoked = AlertApiSink("central", central.url, "ce_000000000000_nope")
    try:
        with pytest.raises(SinkUnavailable, match="answered 403"):
            await foreign.write_events([opened(1, "sink-b")])
        with pytest.raises(SinkUnavailable, match="answered 401"):
            await revoked.write_events([opened(1, "sink-b")])
    finally:
        await foreign.close()
        await revoked.close()


async def test_an_api_down_is_unavailable_and_a_wrong_path_rejected(
    central: CentralApiProcess,
) -> None:
    token = central.create_token("edge_agent", "sink-c")
    down = AlertApiSink("central", f"http://127.0.0.1:{free_port()}", token, timeout_s=2.0)
    wrong = AlertApiSink("central", f"{central.url}/nothing/here", token)
    try:
        with pytest.raises(SinkUnavailable, match="unreachable"):
            await down.write_events([opened(1, "sink-c")])
        with pytest.raises(SinkRejected, match="answered 404"):
            await wrong.write_events([opened(1, "sink-c")])
    finally:
        await down.close()
        await wrong.close()


def test_the_central_settings_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMUNITY_EDGE_CENTRAL__URL", "http://central.example:8090/")
    monkeypatch.setenv("COMMUNITY_EDGE_CENTRAL__TOKEN", "ce_abc_secret")
    settings = load_settings(overrides={"data_dir": str(tmp_path)})
    assert settings.central.url == "http://central.example:8090"
    assert settings.central.token is not None
    assert settings.central.token.get_secret_value() == "ce_abc_secret"
    monkeypatch.delenv("COMMUNITY_EDGE_CENTRAL__TOKEN")
    with pytest.raises(ConfigurationError, match="central: url needs a token"):
        load_settings(overrides={"data_dir": str(tmp_path)})
