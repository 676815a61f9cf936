"""SMS and voice channels end to end: `community-edge run` against the local provider receivers.

An SOS press reaches the person on the phone (an SMS whose short link opens the confirmation
page; a call whose key press acknowledges the alert in the person's name, also after the agent
restarted between the call and the key press); a provider's error codes are retried and on the
alert's delivery record; and the time from the SOS publish to the provider's first request.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import httpx
import pytest

from tests.agent_process import wait_for
from tests.phone_agent import (
    CALLBACK_TOKEN,
    alert_of,
    phone_agent,
    press_sos_button,
    request_number,
)
from tests.phone_receivers import (
    ALIYUN_SECRET,
    Medium,
    Provider,
    ProviderReceiver,
    ProviderRequest,
)
from tests.servers import MosquittoServer


def test_an_sos_sends_an_sms_whose_short_link_opens_the_confirmation_page(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    with (
        ProviderReceiver("aliyun", "sms") as receiver,
        phone_agent(tmp_path, mosquitto, (receiver, "sms-aliyun")) as agent,
    ):
        press_sos_button(mosquitto, "smsc", "sos-s1")
        request = request_number(receiver, 1)
        alert = alert_of(agent, "smsc", "sos-s1")
        fields = request.fields
        assert request.phone == "13812345678"
        assert (fields["level"], fields["place"]) == ("紧急", "smsc b1")
        link = fields["link"]
        assert link.startswith(f"{agent.url}/s/")
        assert len(link) - len(agent.url) <= 16  # short enough for an SMS variable
        # following it (as a link preview would) leads to the page and acknowledges nothing
        page = httpx.get(link, follow_redirects=True, timeout=10)
        assert page.status_code == 200
        assert "确认接警" in page.text
        assert "李伟" in page.text
        assert agent.get(f"/v1/alerts/{alert['id']}")["alert"]["status"] == "active"
        # the provider's delivery receipt lands on the alert's delivery record
        assert receiver.report(agent.url, CALLBACK_TOKEN, request).json() == {
            "code": 0,
            "msg": "接收成功",
        }
        deliveries = wait_for(
            lambda: [
                d
                for d in agent.get(f"/v1/alerts/{alert['id']}")["deliveries"]
                if "回执" in d["sink"]
            ],
            10,
            "the receipt on the alert",
        )
        assert deliveries[0]["result"] == "delivered"
        assert "138****5678" in deliveries[0]["reason"]
        assert "13812345678" not in str(agent.get(f"/v1/alerts/{alert['id']}"))
        assert httpx.get(f"{agent.url}/s/notACodeAtAl", timeout=5).status_code == 404


def test_pressing_1_on_the_call_acknowledges_the_alert_as_the_person_called(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    with (
        ProviderReceiver("tencent", "voice") as receiver,
        phone_agent(tmp_path, mosquitto, (receiver, "call-tencent")) as agent,
    ):
        press_sos_button(mosquitto, "callc", "sos-c1")
        request = request_number(receiver, 1)
        alert = alert_of(agent, "callc", "sos-c1")
        assert request.phone == "+8613812345678"
        assert request.fields["level"] == "紧急"
        # a callback to any other URL is refused and changes nothing
        assert receiver.press(agent.url, "not-the-token-000000", request).status_code == 404
        assert agent.get(f"/v1/alerts/{alert['id']}")["alert"]["status"] == "active"
        # a key press from another number, or for a call we never made, acknowledges nothing
        callback = f"{agent.url}/callbacks/tencent/{CALLBACK_TOKEN}/voice"
        for callid, mobile in (
            (request.provider_id, "13900000000"),
            ("no-such-call", "13812345678"),
        ):
            stray = {"callid": callid, "keypress": "1", "mobile": mobile, "nationcode": "86"}
            answered = httpx.post(callback, json={"voicekey_callback": stray}, timeout=10)
            assert answered.json() == {"result": 0, "errmsg": "OK"}  # else Tencent pushes again
        assert agent.get(f"/v1/alerts/{alert['id']}")["alert"]["status"] == "active"
        answer = receiver.press(agent.url, CALLBACK_TOKEN, request)
        assert answer.json() == {"result": 0, "errmsg": "OK"}
        detail = agent.get(f"/v1/alerts/{alert['id']}")
        assert (detail["alert"]["status"], detail["alert"]["acknowledged_by"]) == (
            "acknowledged",
            "李伟",
        )
        assert [e["kind"] for e in detail["history"]] == ["opened", "acknowledged"]
        assert "电话按键确认" in detail["history"][-1]["note"]
        # the call's record arrives later: on the delivery record too
        receiver.report(agent.url, CALLBACK_TOKEN, request)
        rows = wait_for(
            lambda: {
                d["sink"]: d["reason"]
                for d in agent.get(f"/v1/alerts/{alert['id']}")["deliveries"]
                if "回执" in d["sink"]
            },
            10,
            "the call's receipt",
        )
        assert "接听 answered" in rows["call-tencent → li-wei 回执 receipt"]
        keypad = agent.get(f"/v1/alerts/{alert['id']}")["deliveries"]
        assert any(
            d["sink"] == "call-tencent → li-wei 按键 keypad"
            and "acknowledged as 李伟" in d["reason"]
            for d in keypad
        )
        metrics = agent.metrics()
        outcomes = {
            k: metrics[f'community_edge_phone_callbacks_total{{outcome="{k}"}}']
            for k in ("acknowledged", "unmatched", "refused")
        }
        assert outcomes == {"acknowledged": 1, "unmatched": 2, "refused": 1}


def test_the_agent_restarted_between_the_call_and_the_key_press_acknowledges_the_right_alert(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    with ProviderReceiver("aliyun", "voice") as receiver:
        agent = phone_agent(tmp_path, mosquitto, (receiver, "call-aliyun"))
        with agent:
            press_sos_button(mosquitto, "restartc", "sos-r1")
            request_number(receiver, 1)
            press_sos_button(mosquitto, "restartc", "sos-r2")
            second_call = request_number(receiver, 2)
            first = alert_of(agent, "restartc", "sos-r1")
            second = alert_of(agent, "restartc", "sos-r2")
        # the context manager stopped it (SIGINT); the same data dir and port: a restarted gateway
        agent.start()
        try:
            answer = receiver.press(agent.url, CALLBACK_TOKEN, second_call)
            assert answer.json() == {"code": 0, "msg": "接收成功"}
            acked = agent.get(f"/v1/alerts/{second['id']}")["alert"]
            assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "李伟")
            assert agent.get(f"/v1/alerts/{first['id']}")["alert"]["status"] == "active"
            assert len(receiver.requests) == 2  # the restart rang nobody again
        finally:
            agent.stop()


def test_provider_errors_are_retried_and_on_the_alerts_delivery_record(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    refusals = ["isv.BUSINESS_LIMIT_CONTROL", "ServiceUnavailable"]

    def answer(request: ProviderRequest) -> str | None:
        return refusals.pop(0) if refusals else None

    with (
        ProviderReceiver("aliyun", "sms", answer) as receiver,
        phone_agent(tmp_path, mosquitto, (receiver, "sms-aliyun")) as agent,
    ):
        press_sos_button(mosquitto, "errc", "sos-e1")
        request_number(receiver, 1)
        alert = alert_of(agent, "errc", "sos-e1")
        assert [r.code for r in receiver.requests] == [
            "isv.BUSINESS_LIMIT_CONTROL",
            "ServiceUnavailable",
            "OK",
        ]
        rows = wait_for(
            lambda: (
                {
                    (d["sink"], d["result"]): d
                    for d in agent.get(f"/v1/alerts/{alert['id']}")["deliveries"]
                }.get(("sms-aliyun", "delivered"))
                and agent.get(f"/v1/alerts/{alert['id']}")["deliveries"]
            ),
            10,
            "the channel's delivery",
        )
        by = {(d["sink"], d["result"]): d for d in rows}
        failed = by[("sms-aliyun → li-wei", "failed")]
        assert failed["attempts"] == 2
        assert "503" in failed["reason"] or "ServiceUnavailable" in failed["reason"]
        assert by[("sms-aliyun", "failed")]["attempts"] == 2
        assert ("sms-aliyun → li-wei", "delivered") in by
        metrics = agent.metrics()
        assert metrics['community_edge_sink_errors_total{sink="sms-aliyun"}'] >= 2
        assert metrics['community_edge_phone_sends_total{result="failed",sink="sms-aliyun"}'] == 2
        assert metrics['community_edge_phone_sends_total{result="sent",sink="sms-aliyun"}'] == 1
        assert ALIYUN_SECRET not in agent.log_tail(400)


@pytest.mark.parametrize(("provider", "medium"), [("aliyun", "sms"), ("tencent", "voice")])
def test_time_from_sos_publish_to_the_providers_first_request(
    tmp_path: Path, mosquitto: MosquittoServer, provider: Provider, medium: Medium
) -> None:
    presses = 30
    with (
        ProviderReceiver(provider, medium) as receiver,
        phone_agent(tmp_path, mosquitto, (receiver, "phone"), per_person_limit=presses),
    ):
        took = []
        for n in range(presses):
            start = time.monotonic()
            press_sos_button(mosquitto, "latc", f"sos-lat{n}")
            took.append(request_number(receiver, n + 1).at - start)
    took.sort()
    p50, p99 = statistics.median(took), took[min(len(took) - 1, int(len(took) * 0.99))]
    print(
        f"\n{provider} {medium}: SOS publish -> first request at the provider, idle, "
        f"{presses} presses: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    )
    # each press reached the provider; the speed (well inside a second at idle) is `python -m bench
    # phones`' figure, and 15 s only a generous bound that a loaded machine (a parallel run) meets
    assert p99 < 15.0


def test_an_alert_taken_while_the_provider_was_down_is_not_phoned_once_it_is_back(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    down = True

    def answer(request: ProviderRequest) -> str | None:
        return "ServiceUnavailable" if down else None

    with (
        ProviderReceiver("tencent", "sms", answer) as receiver,
        phone_agent(tmp_path, mosquitto, (receiver, "sms-tencent")) as agent,
    ):
        press_sos_button(mosquitto, "takenc", "sos-t1")
        wait_for(lambda: receiver.requests, 20, "a first, failing, request")
        alert = alert_of(agent, "takenc", "sos-t1")
        taken = agent.post(f"/v1/alerts/{alert['id']}/ack", {"note": "在现场"})
        assert taken.status_code == 200
        down = False
        # the channel drops the queued call before the phone sink sees it (rules of reach)
        wait_for(
            lambda: any(
                (d["sink"], d["result"]) == ("sms-tencent", "skipped")
                and d["reason"].startswith("not sent: acknowledged by")
                for d in agent.get(f"/v1/alerts/{alert['id']}")["deliveries"]
            ),
            20,
            "the channel done with the opened event",
        )
        assert receiver.accepted == []
        assert (
            agent.metrics()['community_edge_phone_sends_total{result="sent",sink="sms-tencent"}']
            == 0
        )
