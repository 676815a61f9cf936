"""An alert's one-line summary in the page's language: the rule's `summary_zh` on a Chinese page,
the stored (English) summary otherwise or when the rule has no Chinese line.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from edge.agent import Desk
from edge.model import Alert
from edge.rule_spec import RuleSpec
from gateway.console.catalogue import Lang


def said_in(request: Request, lang: Lang) -> Callable[[Alert], str]:
    """What templates call `said(alert)` with; a console without an agent's desk says it as stored."""
    desk = getattr(request.app.state, "desk", None)
    if lang != "zh" or not isinstance(desk, Desk):
        return lambda alert: alert.summary
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
        return f"{rule.summary_zh}\uff1a{seen}"  # a full-width colon after Chinese text
    return summary  # written by another version of the rule: as stored, not a wrong translation
