"""SMS and voice channels against local Alibaba Cloud and Tencent Cloud receivers that check the
signature, template fields and numbers as the providers do: who is reached with what, provider
error codes, a slow or absent provider, the phone book, and the settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.alerts import Roster
from edge.clock import FakeClock
from edge.errors import SinkRejected, SinkUnavailable
from edge.model import Alert, AlertEvent, AlertEventKind, AlertStatus
from edge.sinks import (
    ALARM_KINDS,
    AliyunSms,
    AliyunVoice,
    Card,
    Contact,
    DeliveryLog,
    DeliveryResult,
    LinkVerb,
    Listed,
    OnDutyPeople,
    PhoneBook,
    PhoneSender,
    PhoneSink,
    Route,
    SendStatus,
    TencentSms,
    TencentVoice,
)
from edge.sinks.channels.aliyun import rpc_signature
from edge.sinks.channels.phone_book import mask, phone_hash
from edge.sinks.channels.route import SHANGHAI
from gateway.phone_channels import phone_route
from gateway.settings import (
    AliyunSmsChannelSettings,
    ConfigurationError,
    TencentVoiceChannelSettings,
    load_settings,
)
from tests.factories import opened_event
from tests.phone_receivers import (
    ALIYUN_KEY_ID,
    ALIYUN_SECRET,
    TENCENT_SECRET_ID,
    TENCENT_SECRET_KEY,
    TENCENT_SMS_APP,
    TENCENT_VOICE_APP,
    Medium,
    Provider,
    ProviderReceiver,
    ProviderRequest,
)
from tests.servers import free_port

LI = Card("li-wei", "李伟", "13812345678")
WANG = Card("wang-fang", "王芳", "+86 139 1234 5678")


class _Links:
    def link(self, alert: Alert, verb: LinkVerb, person: Contact) -> str:
        return f"https://gw.example/s/{person.id}-{alert.id}"


def sender(
    provider: Provider,
    medium: Medium,
    url: str,
    *,
    secret: str | None = None,
    timeout_s: float = 5.0,
) -> PhoneSender:
    if provider == "aliyun":
        key = secret or ALIYUN_SECRET
        if medium == "sms":
            return AliyunSms(
                "sms",
                ALIYUN_KEY_ID,
                key,
                sign_name="智慧社区",
                template_code="SMS_123456789",
                endpoint=url,
                timeout_s=timeout_s,
            )
        return AliyunVoice(
            "voice", ALIYUN_KEY_ID, key, tts_code="TTS_987654321", endpoint=url, timeout_s=timeout_s
        )
    key = secret or TENCENT_SECRET_KEY
    if medium == "sms":
        return TencentSms(
            "sms",
            TENCENT_SECRET_ID,
            key,
            sdk_app_id=TENCENT_SMS_APP,
            sign_name="智慧社区",
            template_id="1110",
            endpoint=url,
            timeout_s=timeout_s,
        )
    return TencentVoice(
        "voice",
        TENCENT_SECRET_ID,
        key,
        voice_sdk_app_id=TENCENT_VOICE_APP,
        template_id="2220",
        endpoint=url,
        timeout_s=timeout_s,
    )


@pytest.fixture
def book(tmp_path: Path) -> Iterator[PhoneBook]:
    opened = PhoneBook(tmp_path / "phone-sends.db")
    yield opened
    opened.close()


def _sink(
    name: str,
    send: PhoneSender,
    book: PhoneBook,
    people: list[Card],
    log: DeliveryLog | None = None,
) -> PhoneSink:
    listed = Listed(people)
    return PhoneSink(
        name, send, listed, book, zone=SHANGHAI, audience=listed, links=_Links(), log=log
    )


KINDS = [("aliyun", "sms"), ("aliyun", "voice"), ("tencent", "sms"), ("tencent", "voice")]


@pytest.mark.parametrize(("provider", "medium"), KINDS)
async def test_each_person_gets_a_signed_request_with_the_template_fields(
    provider: Provider, medium: Medium, book: PhoneBook
) -> None:
    with ProviderReceiver(provider, medium) as receiver:
        sink = _sink("phone", sender(provider, medium, receiver.url), book, [LI, WANG])
        try:
            await sink.write_events([opened_event(1)])
        finally:
            await sink.close()
    assert [r.code for r in receiver.requests] == ["OK" if provider == "aliyun" else "Ok"] * 2
    national = [r.phone.removeprefix("+86") for r in receiver.requests]
    assert national == ["13812345678", "13912345678"]
    li, wang = (r.fields for r in receiver.requests)
    assert (li["level"], li["summary"], li["place"]) == ("紧急", "Smoke", "c1 b1")
    if medium == "sms":
        assert li["link"] == "https://gw.example/s/li-wei-a1"  # each person's own link
        assert wang["link"] == "https://gw.example/s/wang-fang-a1"
        assert li["time"] == "11-23 08:00"  # Asia/Shanghai
    else:
        assert set(li) == {"level", "summary", "place"}
        assert sink.message(opened_event(1), LI).text("voice").endswith("确认请按1。")
    for request, person in zip(receiver.requests, (LI, WANG), strict=True):
        record = book.by_ref(request.ref)  # our reference came back as OutId / SessionContext
        assert record is not None
        assert (record.person_name, record.status) == (person.name, SendStatus.SENT)
        assert record.provider_id == request.provider_id
        assert (record.alert_id, record.medium) == ("a1", medium)


def test_an_sms_or_a_call_says_the_rule_s_chinese_summary(book: PhoneBook) -> None:
    listed = Listed([LI])
    sink = PhoneSink(
        "voice",
        sender("aliyun", "voice", "http://127.0.0.1:9"),
        listed,
        book,
        zone=SHANGHAI,
        audience=listed,
        chinese=lambda alert: {"Smoke": "烟雾报警"}.get(alert.summary, alert.summary),
    )
    message = sink.message(opened_event(1), LI)
    assert message.summary == "烟雾报警"
    assert message.text("voice") == "c1 b1发生紧急告警:烟雾报警。确认请按1。"


async def test_an_escalation_says_so_and_acknowledgements_are_not_phoned(book: PhoneBook) -> None:
    first = opened_event(1)
    escalated = first.model_copy(update={"id": "e1-esc", "kind": AlertEventKind.ESCALATED})
    acked = first.model_copy(update={"id": "e1-ack", "kind": AlertEventKind.ACKNOWLEDGED})
    with ProviderReceiver("tencent", "voice") as receiver:
        sink = _sink("voice", sender("tencent", "voice", receiver.url), book, [LI])
        await sink.write_events([escalated, acked])
        await sink.close()
    assert [r.fields["level"] for r in receiver.requests] == ["紧急升级"]
    assert phone_route(Route()).kinds == ALARM_KINDS  # the channel's route skips the rest


async def test_nobody_is_phoned_about_an_alert_someone_has_taken(book: PhoneBook) -> None:
    taken: dict[str, str] = {}
    first = opened_event(1)
    repeat = first.model_copy(
        update={
            "id": "e1-rep",
            "kind": AlertEventKind.REPEATED,
            "alert": first.alert.model_copy(update={"status": AlertStatus.ACKNOWLEDGED}),
        }
    )
    with ProviderReceiver("aliyun", "voice") as receiver:
        sink = _sink("voice", sender("aliyun", "voice", receiver.url), book, [LI, WANG])
        sink.settled = taken.get
        await sink.write_events([repeat])  # a repeat of an alert already acknowledged
        taken["a2"] = "李伟"  # acknowledged while the channel was behind
        await sink.write_events([opened_event(2)])
        await sink.write_events([opened_event(3)])  # nobody has taken this one
        await sink.close()
    assert [r.phone for r in receiver.requests] == ["13812345678", "13912345678"]
    assert {r.fields["summary"] for r in receiver.requests} == {"Smoke"}
    assert sink.spared == 2


class _BrokenLinks:
    def link(self, alert: Alert, verb: LinkVerb, person: Contact) -> str:
        raise OSError("disk full")


async def test_a_failing_phone_book_is_retried_and_a_failing_link_sends_without_one(
    tmp_path: Path,
) -> None:
    broken = PhoneBook(tmp_path / "broken.db")
    broken.close()
    with ProviderReceiver("aliyun", "sms") as receiver:
        sink = _sink("sms", sender("aliyun", "sms", receiver.url), broken, [LI])
        with pytest.raises(SinkUnavailable, match="phone book"):
            await sink.write_events([opened_event(1)])
        assert receiver.requests == []  # nobody rung without a record of it
        book = PhoneBook(tmp_path / "phone-sends.db")
        unlinked = PhoneSink(
            "sms",
            sender("aliyun", "sms", receiver.url),
            Listed([LI]),
            book,
            zone=SHANGHAI,
            audience=Listed([LI]),
            links=_BrokenLinks(),
        )
        await unlinked.write_events([opened_event(1)])
        await sink.close()
        await unlinked.close()
        book.close()
    assert receiver.accepted[0].fields["link"] == "请登录值班台"  # "sign in to the console"


async def test_a_retryable_error_fails_the_batch_and_the_retry_reaches_only_who_was_missed(
    book: PhoneBook, tmp_path: Path
) -> None:
    limited = {"13912345678"}

    def answer(request: ProviderRequest) -> str | None:
        return "isv.BUSINESS_LIMIT_CONTROL" if request.phone in limited else None

    log = DeliveryLog(tmp_path / "deliveries.db", now=lambda: datetime.now(UTC))
    with ProviderReceiver("aliyun", "sms", answer) as receiver:
        sink = _sink("sms", sender("aliyun", "sms", receiver.url), book, [LI, WANG], log)
        with pytest.raises(SinkUnavailable, match=r"isv\.BUSINESS_LIMIT_CONTROL") as failed:
            await sink.write_events([opened_event(1)])
        assert failed.value.delivered == ()  # the event is retried as a whole ...
        limited.clear()
        await sink.write_events([opened_event(1)])
        await sink.close()
    # ... but Li, already reached, is not sent it twice
    assert [(r.phone, r.code) for r in receiver.requests] == [
        ("13812345678", "OK"),
        ("13912345678", "isv.BUSINESS_LIMIT_CONTROL"),
        ("13912345678", "OK"),
    ]
    rows = {(d.sink, d.result): d for d in await log.for_alert("a1")}
    assert rows[("sms → wang-fang", DeliveryResult.FAILED)].reason is not None
    assert "139****5678" in (rows[("sms → wang-fang", DeliveryResult.DELIVERED)].reason or "")
    assert ("sms → li-wei", DeliveryResult.DELIVERED) in rows
    await log.close()
    assert (sink.sent, sink.failed) == (2, 1)


async def test_a_number_the_provider_refuses_is_recorded_and_the_others_still_reached(
    book: PhoneBook,
) -> None:
    def answer(request: ProviderRequest) -> str | None:
        return "isv.MOBILE_NUMBER_ILLEGAL" if request.phone == "13912345678" else None

    with ProviderReceiver("aliyun", "voice", answer) as receiver:
        sink = _sink("voice", sender("aliyun", "voice", receiver.url), book, [LI, WANG])
        await sink.write_events([opened_event(1)])  # Li reached: the event is delivered
        assert book.status("voice", "e1", "wang-fang") is SendStatus.REJECTED
        sink_nobody = _sink("voice2", sender("aliyun", "voice", receiver.url), book, [WANG])
        with pytest.raises(SinkRejected, match="reached nobody"):
            await sink_nobody.write_events([opened_event(2)])
        await sink.close()
        await sink_nobody.close()
    assert (sink.rejected, sink_nobody.unreached) == (1, 1)


async def test_nobody_to_reach_is_a_rejection_naming_the_place(book: PhoneBook) -> None:
    with ProviderReceiver("aliyun", "sms") as receiver:
        sink = _sink("sms", sender("aliyun", "sms", receiver.url), book, [])
        for _ in range(2):  # the forwarder's split sends the refused event again
            with pytest.raises(SinkRejected, match="nobody with a phone for c1/b1"):
                await sink.write_events([opened_event(1)])
        await sink.close()
    assert receiver.requests == []
    assert sink.unreached == 1


@pytest.mark.parametrize(
    ("provider", "code"),
    [("aliyun", "SignatureDoesNotMatch"), ("tencent", "AuthFailure.SignatureFailure")],
)
async def test_a_wrong_secret_is_retried_and_never_shown(
    provider: Provider, code: str, book: PhoneBook
) -> None:
    wrong = "the-wrong-secret-0123456789"
    with ProviderReceiver(provider, "sms") as receiver:
        sink = _sink("sms", sender(provider, "sms", receiver.url, secret=wrong), book, [LI])
        with pytest.raises(SinkUnavailable, match=code) as failed:
            await sink.write_events([opened_event(1)])
        await sink.close()
    assert wrong not in str(failed.value)
    assert book.status("sms", "e1", "li-wei") is SendStatus.FAILED


async def test_a_slow_provider_times_out_and_an_absent_one_is_unreachable(book: PhoneBook) -> None:
    with ProviderReceiver("tencent", "voice", delay_s=1.0) as slow:
        sink = _sink("voice", sender("tencent", "voice", slow.url, timeout_s=0.2), book, [LI])
        with pytest.raises(SinkUnavailable, match="unreachable: ReadTimeout"):
            await sink.write_events([opened_event(1)])
        await sink.close()
    port = free_port()
    absent = _sink("sms", sender("aliyun", "sms", f"http://127.0.0.1:{port}"), book, [LI])
    with pytest.raises(SinkUnavailable, match="unreachable: ConnectError"):
        await absent.write_events([opened_event(2)])
    # the provider comes up on that port: the retry goes through
    with ProviderReceiver("aliyun", "sms", port=port) as late:
        await absent.write_events([opened_event(2)])
    await absent.close()
    assert len(late.accepted) == 1


def test_the_alibaba_signature_matches_its_documented_example() -> None:
    # Alibaba's "签名机制" example: DescribeRegions signed with testid / testsecret
    params = {
        "TimeStamp": "2016-02-23T12:46:24Z",
        "Format": "XML",
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "Version": "2014-05-26",
        "SignatureVersion": "1.0",
    }
    assert rpc_signature("GET", params, "testsecret") == "CT9X0VtwR86fNWSnsc6v8YGOjuE="


def test_whoever_is_on_duty_is_reached(tmp_path: Path) -> None:
    roster_file = tmp_path / "roster.yaml"
    roster_file.write_text(
        """
timezone: Asia/Shanghai
people:
  - {id: li-wei, name: 李伟, phone: "13812345678"}
  - {id: zhang-san, name: 张三, phone: "13700000000"}
  - {id: no-phone, name: 无电话}
teams:
  - id: garden
    community: c1
    shifts:
      - {name: day, start: "08:00", end: "20:00", rotation: [li-wei]}
      - {name: night, start: "20:00", end: "08:00", rotation: [zhang-san]}
""",
        encoding="utf-8",
    )

    def names(duty: OnDutyPeople, event: AlertEvent) -> list[str]:
        found = (duty.contact(p) for p in duty.people(event))
        return [c.name for c in found if c is not None]

    duty = OnDutyPeople(Roster.load(roster_file))
    day = opened_event(1)  # 2026-11-23 00:00 UTC = 08:00 in Shanghai: the day shift begins
    night = day.model_copy(update={"at": day.at - timedelta(minutes=1)})
    assert names(duty, day) == ["李伟"]
    assert names(duty, night) == ["张三"]
    other = day.model_copy(update={"alert": day.alert.model_copy(update={"community": "c2"})})
    assert names(duty, other) == []

    # a handover written into the file is read at the next alarm; a broken file changes nothing
    watched = OnDutyPeople(Roster.load(roster_file), roster_file)
    roster_file.write_text(
        roster_file.read_text(encoding="utf-8").replace(
            "rotation: [li-wei]", "rotation: [zhang-san]"
        ),
        encoding="utf-8",
    )
    assert names(watched, day) == ["张三"]
    roster_file.write_text("people: [{id: x}]\n", encoding="utf-8")
    assert names(watched, day) == ["张三"]


def test_the_book_keeps_no_phone_number(book: PhoneBook, tmp_path: Path) -> None:
    clock = FakeClock()
    ref = book.begin(
        channel="sms",
        provider="tencent",
        medium="voice",
        event_id="e1",
        event_kind="opened",
        alert_id="a1",
        person_id="li-wei",
        person_name="李伟",
        phone="+86 138 1234 5678",
        now=clock.now(),
    )
    # the agent stopped before the provider's id was written: a callback is matched by number
    found = book.latest_to("tencent", "voice", "13812345678", clock.now(), timedelta(minutes=5))
    assert found is not None
    assert found.ref == ref
    book.finish(ref, SendStatus.SENT, now=clock.now(), provider_id="call-1")
    assert (
        book.latest_to("tencent", "voice", "13812345678", clock.now(), timedelta(minutes=5)) is None
    )
    assert b"13812345678" not in (tmp_path / "phone-sends.db").read_bytes()
    assert mask("13812345678") == "138****5678"
    assert phone_hash("+8613812345678") == phone_hash("138 1234 5678")
    record = book.by_provider_id("tencent", "call-1")
    assert record is not None
    assert book.matches_phone(record, "8613812345678")
    assert not book.matches_phone(record, "13900000000")


def test_old_sends_are_pruned(tmp_path: Path) -> None:
    book = PhoneBook(tmp_path / "phone-sends.db", keep=timedelta(days=1))
    clock = FakeClock()
    first = ""
    for n in range(100):
        ref = book.begin(
            channel="sms",
            provider="aliyun",
            medium="sms",
            event_id=f"e{n}",
            event_kind="opened",
            alert_id=f"a{n}",
            person_id="li-wei",
            person_name="李伟",
            phone="13812345678",
            now=clock.now(),
        )
        first = first or ref
        clock.advance(3600)  # an hour apart: the 100th send prunes those older than a day
    assert book.by_ref(first) is None
    assert len(book.for_alert("a99")) == 1
    assert sum(len(book.for_alert(f"a{n}")) for n in range(100)) == 25
    book.close()


_CONFIG = """
notifications: {public_url: "https://gw.example"}
phone: {callback_token_file: "%(dir)s/callback-token"}
channels:
  - name: sms-aliyun
    type: aliyun_sms
    access_key_id: LTAI-x
    access_key_secret_file: "%(dir)s/aliyun-secret"
    sign_name: 智慧社区
    template_code: SMS_1
    recipients: [{id: li-wei, name: 李伟, phone: "13812345678"}]
  - name: call-tencent
    type: tencent_voice
    secret_id: AKID-x
    secret_key: abc
    voice_sdk_app_id: "1400009999"
    template_id: "2220"
    roster_file: "%(dir)s/roster.yaml"
"""


def test_phone_settings_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(_CONFIG % {"dir": tmp_path}, encoding="utf-8")
    settings = load_settings(path)
    sms, call = settings.channels
    assert isinstance(sms, AliyunSmsChannelSettings)
    assert isinstance(call, TencentVoiceChannelSettings)
    assert sms.endpoint == "https://dysmsapi.aliyuncs.com"
    assert call.endpoint == "https://vms.tencentcloudapi.com"
    with pytest.raises(ConfigurationError, match=r"access_key_secret_file .*: cannot read"):
        sms.secret()
    (tmp_path / "aliyun-secret").write_text("s3cret\n", encoding="utf-8")
    assert sms.secret() == "s3cret"
    assert "abc" not in repr(call)


@pytest.mark.parametrize(
    ("snippet", "problem"),
    [
        (
            "{name: a, type: aliyun_sms, access_key_id: k, sign_name: s, template_code: t, recipients: [{id: a, name: A, phone: '13812345678'}]}",
            "give access_key_secret or access_key_secret_file",
        ),
        (
            "{name: a, type: tencent_sms, secret_id: i, secret_key: k, sdk_app_id: '1400006666', sign_name: s, template_id: '1'}",
            "give recipients or a roster_file",
        ),
        (
            "{name: a, type: tencent_voice, secret_id: i, secret_key: k, voice_sdk_app_id: '1400009999', template_id: '2', play_times: 5, recipients: [{id: a, name: A, phone: '138'}]}",
            "play_times",
        ),
    ],
)
def test_bad_phone_settings_are_refused(snippet: str, problem: str, tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"channels: [{snippet}]", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=problem):
        load_settings(path)


def test_a_short_callback_token_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("phone: {callback_token: short}", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="at least 16 characters"):
        load_settings(path)
