"""The care report as CSV: one row per household of the programme, headers Chinese first, UTF-8
with a byte-order mark so that Excel (which many community offices use) opens the Chinese right."""

from __future__ import annotations

import csv
import io

from gateway.reports.care import CareReport
from gateway.reports.words import BOTH

_COLUMNS = ("household", "worker", "visits", "visited_col", "condition", "raised", "followed_up",
            "inactivity", "offline", "low_battery", "away")  # fmt: skip


def render_csv(report: CareReport) -> bytes:
    """The report's household rows as CSV bytes (UTF-8 with BOM)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([BOTH[c] for c in _COLUMNS])
    for row in report.rows:
        writer.writerow(
            [
                _cell(row.household),
                _cell(row.worker),
                row.visits,
                BOTH["yes"] if row.visits else BOTH["no"],
                BOTH.get(row.last_condition or "", ""),
                row.raised,
                row.followed_up,
                row.inactivity,
                row.offline,
                row.low_battery,
                _cell(row.away),
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _cell(text: str) -> str:
    """A text cell that a spreadsheet will not run as a formula (CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
