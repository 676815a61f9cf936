# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""What the console shows for the machine's words: device categories, canonical reading fields,
escalation tiers, automatic actors and the notes the agent writes into an alert's history.

The agent stores these in English, the way the API, the logs and the other sinks read them; a
page in Chinese renders them in Chinese here. A word not listed is shown as it is (a field a new
profile brings, a person's name), never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo

from gateway.console.catalogue import Lang

CATEGORIES: dict[str, tuple[str, str]] = {
    "sos": ("紧急求助", "SOS"),
    "smoke": ("烟雾", "smoke"),
    "fall": ("跌倒", "fall"),
    "access": ("门禁", "access"),
    "door": ("门磁", "door"),
    "keypad": ("密码键盘", "keypad"),
    "lock": ("门锁", "lock"),
    "motion": ("人体移动", "motion"),
    "presence": ("人体存在", "presence"),
    "water": ("用水", "water"),
    "household": ("住户", "household"),
    "fire": ("火警", "fire"),
    "gas": ("燃气", "gas"),
    "inactivity": ("无活动", "inactivity"),
}

# the canonical fields the shipped profiles decode to (device_profiles/*.yaml)
FIELDS: dict[str, tuple[str, str]] = {
    "action": ("按键动作", "action"),
    "action_source": ("操作来源", "action source"),
    "burst": ("爆管", "burst"),
    "event_code": ("事件代码", "event code"),
    "fault_alarm": ("故障报警", "fault alarm"),
    "major_type": ("事件大类", "event class"),
    "reverse_flow": ("倒流", "reverse flow"),
    "silence": ("消音", "silenced"),
    "sos_alarm": ("紧急求助报警", "SOS alarm"),
    "supervision_reports": ("巡检上报", "supervision reports"),
    "trouble": ("故障", "trouble"),
    "activity": ("活动", "activity"),
    "availability": ("在线状态", "availability"),
    "battery": ("电量 (%)", "battery (%)"),
    "battery_low": ("电量低", "battery low"),
    "battery_state": ("电池状态", "battery state"),
    "battery_voltage": ("电池电压", "battery voltage"),
    "charging": ("充电", "charging"),
    "device_fault": ("设备故障", "device fault"),
    "door": ("门", "door"),
    "door_state": ("门状态", "door state"),
    "event": ("事件", "event"),
    "event_type": ("事件类型", "event type"),
    "fall_detected": ("检测到跌倒", "fall detected"),
    "fall_state": ("跌倒状态", "fall state"),
    "fault": ("故障", "fault"),
    "flow": ("流量", "flow"),
    "illuminance": ("照度", "illuminance"),
    "leak": ("漏水", "leak"),
    "linkquality": ("信号质量", "link quality"),
    "lock_state": ("门锁状态", "lock state"),
    "motion": ("移动", "motion"),
    "motion_speed": ("移动速度", "motion speed"),
    "no_occupancy_since": ("无人已持续", "no occupancy since"),
    "occupancy": ("有人", "occupancy"),
    "open": ("打开", "open"),
    "presence": ("有人存在", "presence"),
    "rsrp": ("信号强度 RSRP", "RSRP"),
    "rssi": ("信号强度 RSSI", "RSSI"),
    "smoke": ("烟雾", "smoke"),
    "smoke_concentration": ("烟雾浓度", "smoke concentration"),
    "snr": ("信噪比", "SNR"),
    "sos": ("紧急求助", "SOS"),
    "static_dwell_alarm": ("静止滞留报警", "static dwell alarm"),
    "tamper": ("防拆", "tamper"),
    "target_distance": ("目标距离", "target distance"),
    "temperature": ("温度", "temperature"),
    "test": ("自检", "self-test"),
    "water_consumed": ("用水量", "water used"),
    "water_temperature": ("水温", "water temperature"),
}

TIERS: dict[str, tuple[str, str]] = {
    "duty_officer": ("值班员", "duty officer"),
    "property_manager": ("物业经理", "property manager"),
    "emergency_contacts": ("紧急联系人", "emergency contacts"),
    "family": ("家属", "family"),
    "care_worker": ("护理员", "care worker"),
    "default audience": ("默认接收人", "default audience"),
}

ROLES: dict[str, tuple[str, str]] = {
    "duty_officer": ("值班员", "duty officer"),
    "property_manager": ("物业经理", "property manager"),
    "admin": ("管理员", "admin"),
    "platform": ("平台（只读）", "platform (read only)"),
    "care_worker": ("护理员", "care worker"),
    "family": ("家属", "family"),
    "edge_agent": ("边缘网关", "edge agent"),
}

ACTORS: dict[str, tuple[str, str]] = {
    "device": ("设备", "device"),
    "rule": ("规则", "rule"),
    "escalation": ("自动升级", "escalation"),
    "cli": ("命令行", "command line"),
}


def _word(table: dict[str, tuple[str, str]], value: str | None, lang: Lang) -> str:
    if value is None:
        return ""
    found = table.get(value)
    return value if found is None else found[0 if lang == "zh" else 1]


def category_label(category: str | None, lang: Lang) -> str:
    return _word(CATEGORIES, category, lang)


def field_label(field: str, lang: Lang) -> str:
    return _word(FIELDS, field, lang)


def tier_label(tier: str | None, lang: Lang) -> str:
    return _word(TIERS, tier, lang)


def role_label(role: str, lang: Lang) -> str:
    return _word(ROLES, role, lang)


def actor_label(actor: str, lang: Lang) -> str:
    return _word(ACTORS, actor, lang)


def _whom(whom: str) -> str:
    """ "tier property_manager", "王芳 (on duty in ...)", "nobody": the tiers' names in Chinese."""
    whom = whom.replace("default audience", "默认接收人")
    whom = re.sub(r"tier (\w+)", lambda m: "层级：" + tier_label(m.group(1), "zh"), whom)
    return "无人" if whom == "nobody" else tier_label(whom, "zh")


def _escalated(match: re.Match[str]) -> str:
    return f"{match.group(1)} 秒内无人确认：通知 {_whom(match.group(2))}"


def _reason(reason: str) -> str:
    """Why a person holds a duty (edge/alerts/roster.py): a shift, a holiday, an override."""
    kind, _, rest = reason.partition(" ")
    if reason == "override" or reason.startswith("override:"):
        return "临时替班" + reason.removeprefix("override").replace(":", "：", 1)
    if kind == "shift":
        return f"班次 {rest}"
    if kind == "holiday":
        return f"节假日 {rest}"
    return reason


def _on_duty(match: re.Match[str]) -> str:
    return f"（{match.group(1)} 当班，{_reason(match.group(2))}）"


# (pattern, Chinese): what edge/alerts (lifecycle, reach, roster), edge/agent/family_caller.py and
# gateway/reach.py write; tests/test_console_labels.py reads those wordings from the code and
# fails on one that has no line here. Applied in order: "nobody is on duty in <where> at" first,
# then <where> ("the teams of c/b", "team x") inside what it made.
_NOTES_ZH: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"not acknowledged after (\d+) s: notifying ([^;]+)"), _escalated),
    (
        re.compile(r"no notification channel is configured \(channels:\): the console only"),
        "未配置通知渠道（设置 channels:），只在值班台显示",
    ),
    (re.compile(r"reached nobody: "), "未通知到任何人："),
    (re.compile(r"; the next step at once"), "；立即进入下一步"),
    (re.compile(r"; no step left"), "；已没有下一步"),
    (re.compile(r"no channel takes it \("), "没有渠道接收（"),
    (re.compile(r"every channel that takes it is failing \("), "接收它的渠道都出了故障（"),
    (re.compile(r"no duty roster is configured \(roster_file\)"), "未配置值班表（roster_file）"),
    (re.compile(r"no person '([^']*)' in the roster"), r"值班表中没有人员 \1"),
    (re.compile(r"nobody is on duty in (.+?) at (\S+(?: [\d:]+)?) UTC"), r"\1 在 \2 UTC 无人值班"),
    (re.compile(r" \(on duty in ([^,()]+), ([^()]*)\)"), _on_duty),
    (re.compile(r" \(next on the roster of ([^()]+)\)"), r"（\1 值班表中的下一位）"),
    (
        re.compile(r"nobody after (.+?) on the roster of ([^;]+)"),
        r"\2 的值班表中 \1 之后已无人",
    ),
    (re.compile(r"the teams of (\S+?)(?= 在 )"), r"\1 的班组"),
    (re.compile(r"(?<!\w)team (\S+?)(?= 在 )"), r"班组 \1"),
    (
        re.compile(
            r"nobody on duty acknowledged in (\d+) s: notifying the family of the household "
            r"\(([^()]*)\)"
        ),
        r"\1 秒内值班人员无人确认：通知住户家属（\2）",
    ),
    (re.compile(r"superseded by (\S+) alert (\S+)"), r"已被 \1 告警 \2 取代"),
    (re.compile(r"silenced \((.*?)\): recorded, not notified"), r"已静默（\1）：已记录，未通知"),
    (
        re.compile(r"flapping: raised and cleared too often; not notified again until stable"),
        "反复触发恢复（抖动）：稳定之前不再通知",
    ),
    (re.compile(r"flapping: recorded, not notified"), "抖动：已记录，未通知"),
]


_UTC_MINUTE = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d) UTC")


def note_label(note: str | None, lang: Lang, zone: tzinfo | None = None) -> str:
    """A history note in the page's language (an English page: as stored; a person's own note
    matches no pattern and is shown as written), its UTC times ("at 2026-12-06 07:00 UTC", as
    the agent writes them) in `zone`, the community's, when given."""
    if not note:
        return ""
    if lang == "zh":
        for pattern, zh in _NOTES_ZH:
            note = pattern.sub(zh, note)
        note = note.replace("; ", "；")
    if zone is not None:
        note = _UTC_MINUTE.sub(lambda m: _local_minute(m.group(1), zone), note)
    return note


def _local_minute(text: str, zone: tzinfo) -> str:
    at = datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    return f"{at.astimezone(zone):%Y-%m-%d %H:%M}"


LABELS: dict[str, Callable[..., str]] = {
    "category_label": category_label,
    "field_label": field_label,
    "tier_label": tier_label,
    "actor_label": actor_label,
    "role_label": role_label,
    "note_label": note_label,
}
