# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""An alert's one-line summary in the page's language: the rule's `summary_zh` on a Chinese page,
the stored (English) summary otherwise or when the rule has no Chinese line.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi import Request

from edge.agent import Desk
from edge.model import Alert
from edge.rule_spec import RuleSpec
from gateway.console.catalogue import Lang
from gateway.console.labels import category_label, field_label

# what edge.rules.correlation_summary writes after the rule's summary
_SEEN = re.compile(
    r"(?P<signals>.+) from (?P<count>\d+) devices? in building (?P<building>.+) "
    r"within (?P<within>[\d.e+]+) s \((?P<devices>.*)\)"
)
# signal names of the shipped community rules that are no category or field
_SIGNALS = {"heat": "高温"}


def said_in(request: Request, lang: Lang) -> Callable[[Alert], str]:
    """What templates call `said(alert)` with; a console without an agent's desk says it as stored."""
    desk = getattr(request.app.state, "desk", None)
    if lang != "zh" or not isinstance(desk, Desk):
        return lambda alert: alert.summary
    return said_by(desk)


def said_by(desk: Desk) -> Callable[[Alert], str]:
    """An alert's summary in Chinese as the rule that wrote it says it (channel messages and
    the console's Chinese pages); as stored when the rule has no Chinese line."""
    known: dict[tuple[str, str], RuleSpec | None] = {}  # a board draws 1,000 rows of few rules

    def said(alert: Alert) -> str:
        key = (alert.model, alert.rule)
        if key not in known:
            known[key] = desk.rule(alert.model, alert.rule)
        rule = known[key]
        if rule is not None and not _written_by(alert.summary, rule):
            # an override changed the summary where this device is: its rule says it
            rule = desk.rule(alert.model, alert.rule, alert.device_id)
        return summary_zh(alert.summary, rule)

    return said


def _written_by(summary: str, rule: RuleSpec) -> bool:
    return summary == rule.summary or summary.startswith(rule.summary + ":")


def summary_zh(summary: str, rule: RuleSpec | None) -> str:
    """The Chinese line for a stored summary written by `rule`; the summary itself otherwise.

    A place rule's summary is its own followed by what it saw ("Confirmed fire: smoke-a + ..."),
    so the rule's text is swapped where it starts the summary.
    """
    if rule is None or rule.summary_zh is None:
        return summary
    if summary == rule.summary:
        return rule.summary_zh
    if summary.startswith(rule.summary + ":"):
        seen = summary[len(rule.summary) + 1 :].strip()
        return f"{rule.summary_zh}\uff1a{_seen_zh(seen)}"  # a full-width colon after Chinese
    return summary  # written by another version of the rule: as stored, not a wrong translation


def _signal_zh(name: str) -> str:
    if name in _SIGNALS:
        return _SIGNALS[name]
    label = category_label(name, "zh")
    return label if label != name else field_label(name, "zh")


def _seen_zh(seen: str) -> str:
    """What a correlation saw, in Chinese; another wording is kept as written."""
    found = _SEEN.fullmatch(seen)
    if found is None:
        return seen
    signals = " + ".join(_signal_zh(s) for s in found["signals"].split(" + "))
    devices = "、".join(found["devices"].split(", "))
    return (
        f"{found['building']} 栋 {found['within']} 秒内 {found['count']} 个设备报{signals}"
        f"（{devices}）"
    )
