"""The console's words in Simplified Chinese (the default) and English, and the choice between them.

A page asks for `words(lang)[key]`; a missing key fails a test (tests/test_console.py checks that
both languages hold the same keys), never a page shown to someone on duty.
"""

from __future__ import annotations

from typing import Literal

from gateway.console.care_words import CARE_WORDS
from gateway.console.page_words import PAGE_WORDS

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")
DEFAULT: Lang = "zh"

_WORDS: dict[str, tuple[str, str]] = {
    "title": ("值班台", "Duty console"),
    "board": ("告警看板", "Alarm board"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "token": ("访问令牌", "API token"),
    "token_help": (
        "输入管理员为您创建的访问令牌（community-edge tokens create）。",
        "Enter the API token your administrator created for you (community-edge tokens create).",
    ),
    "bad_token": ("令牌无效或已吊销。", "That token is wrong or revoked."),
    "throttled": (
        "失败次数过多，请 {s} 秒后再试。",
        "Too many failed attempts; try again in {s} s.",
    ),
    "edge_agent_refused": (
        "边缘网关令牌不能登录值班台。",
        "An edge_agent token cannot sign in to the console.",
    ),
    "expired": ("登录已过期，请重新登录。", "Your session expired; sign in again."),
    "signed_in_as": ("当前用户", "Signed in as"),
    "language": ("语言", "Language"),
    "other_lang": ("English", "中文"),
    "more_menu": ("更多页面", "More pages"),
    "open_alerts": ("未处理告警", "Open alerts"),
    "none_open": ("没有未处理的告警。", "No open alerts."),
    "severity": ("级别", "Severity"),
    "status": ("状态", "Status"),
    "community": ("小区", "Community"),
    "building": ("楼栋", "Building"),
    "unit": ("单元/户", "Unit"),
    "category": ("类别", "Category"),
    "device": ("设备", "Device"),
    "model": ("型号", "Model"),
    "opened": ("发生时间", "Opened"),
    "age": ("持续", "Age"),
    "summary": ("内容", "What"),
    "any": ("全部", "Any"),
    "open": ("未处理（全部）", "Open (all)"),
    "filter": ("筛选", "Filter"),
    "clear_filters": ("清除筛选", "Clear filters"),
    "live": ("实时", "Live"),
    "offline": ("连接中断，正在重连…", "Connection lost, reconnecting…"),
    "total": ("合计", "Total"),
    "sev_critical": ("紧急", "Critical"),
    "sev_major": ("重要", "Major"),
    "sev_minor": ("次要", "Minor"),
    "sev_warning": ("警告", "Warning"),
    "sev_info": ("提示", "Info"),
    "st_active": ("待确认", "Active"),
    "st_acknowledged": ("已确认", "Acknowledged"),
    "st_resolved": ("已解除", "Resolved"),
    "masked": ("（按角色隐藏）", "(hidden for your role)"),
    "alert": ("告警", "Alert"),
    "back": ("返回看板", "Back to the board"),
    "what_happened": ("发生了什么", "What happened"),
    "place": ("位置", "Place"),
    "timeline": ("处理记录", "Timeline"),
    "deliveries": ("通知送达", "Notifications"),
    "no_deliveries": ("没有通知记录。", "No notification attempts."),
    "actions": ("处理", "Actions"),
    "acknowledge": ("确认", "Acknowledge"),
    "resolve": ("解除", "Resolve"),
    "assign": ("指派", "Assign"),
    "assignee": ("指派给", "Assign to"),
    "note": ("备注", "Note"),
    "outcome": ("处理结果", "Outcome"),
    "out_real": ("真实事件", "Real"),
    "out_false_alarm": ("误报", "False alarm"),
    "out_test": ("测试", "Test"),
    "out_device_fault": ("设备故障", "Device fault"),
    "acknowledged_by": ("确认人", "Acknowledged by"),
    "resolved_by": ("解除人", "Resolved by"),
    "superseded_by": ("后续告警", "Superseded by"),
    "assigned_to": ("负责人", "Assigned to"),
    "count": ("次数", "Times"),
    "read_only": (
        "您的角色只能查看，不能处理告警。",
        "Your role may read alerts, not act on them.",
    ),
    "link_spent": (
        "这个登录链接已用过或已过期，请用访问令牌登录。",
        "This sign-in link was used or has expired; sign in with your API token.",
    ),
    "central_deliveries": (
        "通知的送达记录保存在该小区的网关上。",
        "Notification deliveries are kept on the community's gateway.",
    ),
    "central_read_only": (
        "中心平台只能查看告警；请在该小区网关的值班台处理（确认、指派、解除）。",
        "Central shows alerts only; acknowledge, assign and resolve on the community gateway's console.",
    ),
    "conflict": (
        "未执行：该告警已由 {who} 于 {at} {what}。",
        "Not done: {who} already {what} this alert at {at}.",
    ),
    "done": ("已完成：{what}。", "Done: {what}."),
    "not_found": ("没有这个页面或告警。", "No such page or alert."),
    "csrf": (
        "请求缺少有效的安全令牌，已拒绝。请刷新页面后重试。",
        "The request lacked a valid security token and was refused. Reload the page and retry.",
    ),
    "ev_opened": ("告警产生", "raised"),
    "ev_repeated": ("再次触发", "repeated"),
    "ev_acknowledged": ("已确认", "acknowledged"),
    "ev_resolved": ("已解除", "resolved"),
    "ev_assigned": ("已指派", "assigned"),
    "ev_escalated": ("已升级", "escalated"),
    "start_duty": (
        "开始值班：启用报警声音和通知",
        "Start duty: enable alarm sound and notifications",
    ),
    "sound_on": ("报警声音已启用", "Alarm sound on"),
    "mute": ("静音 10 分钟", "Mute for 10 min"),
    "muted_until": ("已静音，至 {t} 恢复", "Muted until {t}"),
    "unmute": ("取消静音", "Unmute"),
    "life_safety": ("生命安全告警", "Life-safety alarm"),
    "capped": (
        "只显示最紧急的 {shown} 条，共 {total} 条未处理告警符合筛选。",
        "Showing the {shown} most urgent of {total} open alerts that match.",
    ),
    "show_all": ("全部显示（较慢）", "Show all (slower)"),
    "changed": ("此告警刚被其他人更新。", "Someone else just changed this alert."),
    "reload": ("刷新查看", "Reload to see"),
    "skip": ("跳到告警列表", "Skip to the alerts"),
}

_WORDS.update(CARE_WORDS)  # the care pages' words live beside them (gateway/console/care_words.py)
_WORDS.update(PAGE_WORDS)  # the incident, device, building and silence pages' words

WORDS: dict[Lang, dict[str, str]] = {
    "zh": {key: zh for key, (zh, _) in _WORDS.items()},
    "en": {key: en for key, (_, en) in _WORDS.items()},
}


def choose(cookie: str | None, accept_language: str | None) -> Lang:
    """The switch (a cookie) first, then the browser's Accept-Language, then Chinese."""
    if cookie in LANGS:
        return cookie
    best: tuple[float, Lang] | None = None
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGS:
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and (best is None or quality > best[0]):
            best = (quality, primary)
    return best[1] if best is not None else DEFAULT
