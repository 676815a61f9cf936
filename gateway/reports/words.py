"""The care report's words, Chinese first: (zh, en) pairs for the page, the CSV and the PDF."""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]

_WORDS: dict[str, tuple[str, str]] = {
    "title": ("居家养老服务月报", "Home care report"),
    "community": ("社区", "Community"),
    "month": ("月份", "Month"),
    "show": ("查看", "Show"),
    "generated": ("生成时间", "Generated"),
    "download_pdf": ("下载 PDF", "Download PDF"),
    "download_csv": ("下载 CSV", "Download CSV"),
    "visited": ("本月已探访户数", "Households visited this month"),
    "visit_rate": ("探访覆盖率（目标 100%）", "Visited at least once (target 100%)"),
    "followed": ("告警跟进率（目标 100%）", "Alerts followed up (target 100%)"),
    "median_ack": ("确认用时（中位）", "Time to acknowledge (median)"),
    "median_arrive": ("到场用时（中位）", "Time to arrive (median)"),
    "alerts_per_day": ("每日告警数", "Alerts per day"),
    "by_category": ("按类别", "By category"),
    "by_worker": ("按助老员", "By care worker"),
    "category": ("类别", "Category"),
    "worker": ("助老员", "Care worker"),
    "households": ("户数", "Households"),
    "visits": ("探访次数", "Visits"),
    "raised": ("告警数", "Raised"),
    "followed_up": ("已跟进", "Followed up"),
    "cleared_by_itself": ("自行恢复", "Cleared by itself"),
    "ack": ("确认用时", "To acknowledge"),
    "arrive": ("到场用时", "To arrive"),
    "inactivity": ("无生活迹象告警及结果", "No-sign-of-life alerts and outcomes"),
    "household": ("住户", "Household"),
    "rule": ("规则", "Rule"),
    "opened": ("发生时间", "Opened"),
    "acknowledged_by": ("确认人", "Acknowledged by"),
    "condition": ("探访所见", "Found at the visit"),
    "outcome": ("结果", "Outcome"),
    "devices": ("离线或低电量设备", "Devices offline or low on battery"),
    "offline": ("离线", "Offline"),
    "low_battery": ("低电量", "Low battery"),
    "not_visited": ("本月未探访住户", "Households not visited this month"),
    "away": ("外出住户（住院、探亲）", "Households away (hospital, family)"),
    "none": ("无", "None"),
    "her_day": ("生活规律（近四周学习所得）", "Her day (learned from the last four weeks)"),
    "rhythm_unread": (
        "生活规律暂时读不到：保存它的网关进程（{shard}）没有应答，正在重启时会这样，请稍后刷新。",
        "Her day cannot be read just now: the gateway process that keeps it ({shard}) did not "
        "answer, as when it is restarting; refresh in a moment.",
    ),
    "learning": ("学习中，已学 {d} 天", "still learning: {d} days so far"),
    "days_learned": ("已学 {d} 天", "{d} days learned"),
    "own_day": ("日常活动时段", "Her usual hours"),
    "last_sign": ("最近生活迹象", "Last sign of life"),
    "not_watched": ("该户不常用此信号，暂不监测", "not usual in this home: not watched"),
    "alert_open": ("告警中", "alert open"),
    "signs_per_hour": ("每小时有迹象的天数", "Days with a sign, by hour"),
    "until": ("至", "until"),
    "target_met": ("达标", "target met"),
    "target_missed": ("未达标", "target missed"),
    "no_community": ("没有可查看的社区。", "No community to report on."),
    "bad_month": ("月份格式应为 YYYY-MM。", "The month must be YYYY-MM."),
    "visited_col": ("本月探访", "Visited"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "good": ("良好", "good"),
    "fair": ("一般", "fair"),
    "poor": ("较差", "poor"),
    "not_home": ("未见到本人", "not at home"),
}

WORDS: dict[Lang, dict[str, str]] = {
    "zh": {k: v[0] for k, v in _WORDS.items()},
    "en": {k: v[1] for k, v in _WORDS.items()},
}
# the PDF and the CSV: Chinese first, English after, for readers of either
BOTH: dict[str, str] = {k: f"{zh} {en}" for k, (zh, en) in _WORDS.items()}
