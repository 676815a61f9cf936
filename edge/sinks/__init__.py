"""Sinks: where the outbox delivers: the time-series store, the central alert API, webhooks,
notification channels (WeCom, DingTalk, SMS and voice calls) and the embedded reading store.

`InfluxSink` is imported when first named: influxdb-client (about 400 modules, 12 MB of an
agent's resident memory) is loaded only by a gateway with a time-series server configured.
"""

from typing import TYPE_CHECKING

from edge.sinks.alert_api import AlertApiSink
from edge.sinks.channels.addressing import (
    LINK_VERBS,
    Audience,
    Card,
    Contact,
    Directory,
    Everyone,
    LinkMaker,
    LinkVerb,
    Listed,
    OnDutyPeople,
)
from edge.sinks.channels.aliyun import AliyunSms, AliyunVoice
from edge.sinks.channels.channel import Channel
from edge.sinks.channels.delivery_log import Delivery, DeliveryLog, DeliveryResult
from edge.sinks.channels.dingtalk import DingtalkSink
from edge.sinks.channels.message import ActionLink, Notice, NoticeFormat
from edge.sinks.channels.person_rate import Admission, PersonRate, ReachSummary
from edge.sinks.channels.phone import (
    ALARM_KINDS,
    PhoneMessage,
    PhoneSender,
    PhoneSink,
)
from edge.sinks.channels.phone_book import PhoneBook, SendRecord, SendStatus
from edge.sinks.channels.robot import RateWindow, RobotSink
from edge.sinks.channels.route import Route, TimeWindow
from edge.sinks.channels.tencent import TencentSms, TencentVoice
from edge.sinks.channels.wecom import WecomSink
from edge.sinks.reading_store import ReadingQuery, ReadingStore, StoredReading
from edge.sinks.refusal import HTTP_TIMEOUT_S, refusal
from edge.sinks.webhook import WebhookSink

if TYPE_CHECKING:
    from edge.sinks.influx import InfluxSink


def __getattr__(name: str) -> object:
    if name == "InfluxSink":
        from edge.sinks.influx import InfluxSink

        return InfluxSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ALARM_KINDS",
    "HTTP_TIMEOUT_S",
    "LINK_VERBS",
    "ActionLink",
    "Admission",
    "AlertApiSink",
    "AliyunSms",
    "AliyunVoice",
    "Audience",
    "Card",
    "Channel",
    "Contact",
    "Delivery",
    "DeliveryLog",
    "DeliveryResult",
    "DingtalkSink",
    "Directory",
    "Everyone",
    "InfluxSink",
    "LinkMaker",
    "LinkVerb",
    "Listed",
    "Notice",
    "NoticeFormat",
    "OnDutyPeople",
    "PersonRate",
    "PhoneBook",
    "PhoneMessage",
    "PhoneSender",
    "PhoneSink",
    "RateWindow",
    "ReachSummary",
    "ReadingQuery",
    "ReadingStore",
    "RobotSink",
    "Route",
    "SendRecord",
    "SendStatus",
    "StoredReading",
    "TencentSms",
    "TencentVoice",
    "TimeWindow",
    "WebhookSink",
    "WecomSink",
    "refusal",
]
