"""`community-edge run` with phone channels pointed at the local provider receivers, for the
SMS and voice tests: its configuration, an SOS press, and waiting for alerts and requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.agent_process import AgentProcess, wait_for
from tests.mqtt_publisher import publish
from tests.phone_receivers import (
    ALIYUN_KEY_ID,
    ALIYUN_SECRET,
    TENCENT_SECRET_ID,
    TENCENT_SECRET_KEY,
    TENCENT_SMS_APP,
    TENCENT_VOICE_APP,
    ProviderReceiver,
    ProviderRequest,
)
from tests.servers import MosquittoServer

CALLBACK_TOKEN = "callback-token-0123456789abcdef"
PEOPLE = '[{id: li-wei, name: 李伟, phone: "13812345678"}]'


def channel_yaml(receiver: ProviderReceiver, name: str) -> str:
    """One `channels:` entry for the receiver's provider and medium, reaching 李伟."""
    if receiver.provider == "aliyun":
        credentials = (
            f"access_key_id: {ALIYUN_KEY_ID}, access_key_secret_file: '{{dir}}/aliyun-secret'"
        )
        extra = (
            "sign_name: 智慧社区, template_code: SMS_123456789"
            if receiver.medium == "sms"
            else "tts_code: TTS_987654321"
        )
    else:
        credentials = f"secret_id: {TENCENT_SECRET_ID}, secret_key: {TENCENT_SECRET_KEY}"
        extra = (
            f"sdk_app_id: '{TENCENT_SMS_APP}', sign_name: 智慧社区, template_id: '1110'"
            if receiver.medium == "sms"
            else f"voice_sdk_app_id: '{TENCENT_VOICE_APP}', template_id: '2220'"
        )
    return (
        f"  - {{name: {name}, type: {receiver.provider}_{receiver.medium}, {credentials}, "
        f"{extra}, endpoint: '{receiver.url}', timeout_s: 2, recipients: {PEOPLE}}}\n"
    )


def phone_agent(
    tmp_path: Path,
    mosquitto: MosquittoServer,
    *channels: tuple[ProviderReceiver, str],
    per_person_limit: int | None = None,
) -> AgentProcess:
    """An agent whose public address is its own API, with the given phone channels.

    `per_person_limit` raises the rules of reach's limit (5 a person in 10 minutes) for tests
    that phone one person many times on purpose (latency runs)."""
    agent = AgentProcess(tmp_path / "agent", mosquitto.url)
    (tmp_path / "aliyun-secret").write_text(ALIYUN_SECRET + "\n", encoding="utf-8")
    limit = f", per_person_limit: {per_person_limit}" if per_person_limit else ""
    config = (
        f"notifications: {{public_url: '{agent.url}'{limit}}}\n"
        f"phone: {{callback_token: {CALLBACK_TOKEN}}}\n"
        "channels:\n" + "".join(channel_yaml(r, n) for r, n in channels)
    ).replace("{dir}", str(tmp_path))
    path = tmp_path / "config.yaml"
    path.write_text(config, encoding="utf-8")
    agent.extra_args = ["--config", str(path)]
    return agent


def press_sos_button(mosquitto: MosquittoServer, community: str, device: str) -> None:
    """A tuya SOS button in building b1 of `community` pressed (returns once the broker has it)."""
    publish(
        mosquitto.url,
        [(f"ce/{community}/b1/tuya-sos-button/{device}", {"action": "emergency", "battery": 80})],
    )


def alert_of(agent: AgentProcess, community: str, device: str) -> dict[str, Any]:
    """The device's alert as the API lists it, once it is there."""
    alert: dict[str, Any] = wait_for(
        lambda: next(
            (
                a
                for a in agent.get("/v1/alerts", community=community)["items"]
                if a["device_id"] == device
            ),
            None,
        ),
        20,
        f"the SOS alert of {device}",
    )
    return alert


def request_number(receiver: ProviderReceiver, count: int) -> ProviderRequest:
    """The receiver's `count`-th accepted request, once it has arrived."""
    accepted: list[ProviderRequest] = wait_for(
        lambda: receiver.accepted if len(receiver.accepted) >= count else None,
        20,
        f"{count} accepted {receiver.provider} {receiver.medium} requests",
    )
    return accepted[count - 1]
