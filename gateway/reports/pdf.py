"""The care report as a PDF (A4), Chinese first: fpdf2 with Debian's Noto Sans CJK SC embedded
(subset), so it reads the same on any viewer, offline.

Why fpdf2: pure Python (fontTools and Pillow), kept up (2.8, 2026), embeds OpenType/CFF fonts
from a TrueType collection, which is how Debian ships Noto CJK; reportlab's TTF support refuses
CFF outlines, and weasyprint needs Pango and a whole HTML layout engine on a gateway.
fpdf2 is imported by the first render, not with the module: with fontTools, Pillow and
cryptography it is 31 MB of the agent's resident memory that only a monthly report needs.
"""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from gateway.reports.care import CareReport, Figures, duration
from gateway.reports.words import BOTH

if TYPE_CHECKING:
    from fpdf import FPDF

# fonts-noto-cjk (Debian); the collection holds JP, KR, SC, TC, HK: we want Simplified Chinese
FONT_DIR = Path("/usr/share/fonts/opentype/noto")
_FAMILY = "Noto Sans CJK SC"
_INK = (33, 37, 41)
_MUTED = (108, 117, 125)
_BAR = (13, 110, 253)
_GOOD = (25, 135, 84)
_BAD = (220, 53, 69)


class FontMissing(RuntimeError):
    """The CJK font is not installed: the PDF would show empty boxes for every Chinese word."""


@functools.cache
def _collection_index(path: Path) -> int:
    from fontTools.ttLib import TTCollection

    collection = TTCollection(str(path), lazy=True)
    try:
        for index, font in enumerate(collection.fonts):
            if font["name"].getDebugName(1) == _FAMILY:
                return index
    finally:
        collection.close()
    raise FontMissing(f"{path} holds no {_FAMILY}")


def _fonts(pdf: FPDF) -> None:
    for style, name in (("", "NotoSansCJK-Regular.ttc"), ("B", "NotoSansCJK-Bold.ttc")):
        path = FONT_DIR / name
        if not path.exists():
            raise FontMissing(
                f"{path} is missing: apt-get install fonts-noto-cjk (the PDF report's Chinese)"
            )
        pdf.add_font("cjk", style, str(path), collection_font_number=_collection_index(path))


def render_pdf(report: CareReport) -> bytes:
    """The report as PDF bytes."""
    from fpdf import FPDF  # here, not at the top: see the module's docstring

    pdf = FPDF(format="A4")
    pdf.set_title(f"{BOTH['title']} {report.community} {report.label}")
    pdf.set_creator("community-edge")
    pdf.set_auto_page_break(auto=True, margin=15)
    _fonts(pdf)
    pdf.add_page()
    _heading(pdf, report)
    _tiles(pdf, report)
    _per_day(pdf, report)
    _section(pdf, BOTH["by_category"])
    _figures_table(pdf, BOTH["category"], list(report.by_category.items()))
    _section(pdf, BOTH["by_worker"])
    _workers(pdf, report)
    _section(pdf, BOTH["inactivity"])
    _inactivity(pdf, report)
    _section(pdf, BOTH["devices"])
    _devices(pdf, report)
    _section(pdf, BOTH["not_visited"])
    _lines(pdf, list(report.not_visited))
    _section(pdf, BOTH["away"])
    _lines(pdf, [f"{hid}  {BOTH['until']} {note}" for hid, note in report.away])
    return bytes(pdf.output())


def _heading(pdf: FPDF, report: CareReport) -> None:
    pdf.set_text_color(*_INK)
    pdf.set_font("cjk", "B", 16)
    pdf.cell(0, 9, f"{BOTH['title']}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", "", 11)
    pdf.cell(
        0,
        6,
        f"{BOTH['community']}: {report.community}    {BOTH['month']}: {report.label}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_text_color(*_MUTED)
    pdf.set_font("cjk", "", 8)
    generated = (
        f"{report.generated_at.astimezone(ZoneInfo(report.zone)):%Y-%m-%d %H:%M} ({report.zone})"
    )
    pdf.cell(0, 5, f"{BOTH['generated']}: {generated}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)


def _tiles(pdf: FPDF, report: CareReport) -> None:
    """Four figures in boxes; the two with a target say whether it was met, in words too."""
    tiles = [
        (
            BOTH["visit_rate"],
            f"{report.visit_rate:.0%}  ({report.visited}/{report.households})",
            report.visit_rate >= 1.0,
        ),
        (
            BOTH["followed"],
            f"{report.alerts.follow_up_rate:.0%}  ({report.alerts.followed_up}/{report.alerts.raised})",
            report.alerts.follow_up_rate >= 1.0,
        ),
        (BOTH["median_ack"], duration(report.alerts.median_ack_s), None),
        (BOTH["median_arrive"], duration(report.alerts.median_arrive_s), None),
    ]
    width = (pdf.epw - 6) / 2
    top = pdf.get_y()
    for index, (label, value, met) in enumerate(tiles):
        x = pdf.l_margin + (index % 2) * (width + 6)
        y = top + (index // 2) * 22
        pdf.set_draw_color(*_MUTED)
        pdf.rect(x, y, width, 19)
        pdf.set_xy(x + 2, y + 1.5)
        pdf.set_text_color(*_MUTED)
        pdf.set_font("cjk", "", 7.5)
        pdf.cell(width - 4, 4.5, label)
        pdf.set_xy(x + 2, y + 7)
        pdf.set_text_color(*(_INK if met is None else _GOOD if met else _BAD))
        pdf.set_font("cjk", "B", 14)
        mark = (
            ""
            if met is None
            else ("  ✓ " + BOTH["target_met"] if met else "  \u00d7 " + BOTH["target_missed"])
        )
        pdf.cell(width - 4, 8, value)
        if mark:
            pdf.set_font("cjk", "", 7.5)
            pdf.set_xy(x + 2, y + 14)
            pdf.cell(width - 4, 4, mark.strip())
    pdf.set_text_color(*_INK)
    pdf.set_y(top + 46)


def _per_day(pdf: FPDF, report: CareReport) -> None:
    """A bar per day of the month, its count above it."""
    _section(pdf, BOTH["alerts_per_day"])
    counts = report.alerts_per_day
    height = 32.0
    top = pdf.get_y() + 4
    step = pdf.epw / max(len(counts), 1)
    peak = max(counts, default=0) or 1
    pdf.set_font("cjk", "", 6)
    pdf.set_fill_color(*_BAR)
    for day, count in enumerate(counts, start=1):
        x = pdf.l_margin + (day - 1) * step
        bar = height * count / peak
        if count:
            pdf.rect(x + step * 0.15, top + height - bar, step * 0.7, bar, style="F")
            pdf.set_xy(x, top + height - bar - 3.5)
            pdf.cell(step, 3, str(count), align="C")
        pdf.set_xy(x, top + height + 0.5)
        pdf.set_text_color(*_MUTED)
        pdf.cell(step, 3, str(day), align="C")
        pdf.set_text_color(*_INK)
    pdf.set_draw_color(*_MUTED)
    pdf.line(pdf.l_margin, top + height, pdf.l_margin + pdf.epw, top + height)
    pdf.set_fill_color(255, 255, 255)  # tables after the chart fill their cells with it
    pdf.set_y(top + height + 6)


def _section(pdf: FPDF, title: str) -> None:
    if pdf.get_y() > pdf.h - 40:
        pdf.add_page()
    pdf.ln(2)
    pdf.set_font("cjk", "B", 11)
    pdf.set_text_color(*_INK)
    pdf.cell(0, 7, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", "", 8)


def _table(pdf: FPDF, header: list[str], rows: list[list[str]], widths: tuple[int, ...]) -> None:
    from fpdf.fonts import FontFace

    if not rows:
        pdf.cell(0, 5, BOTH["none"], new_x="LMARGIN", new_y="NEXT")
        return
    pdf.set_font("cjk", "", 7.5)
    with pdf.table(
        col_widths=widths,
        headings_style=FontFace(emphasis="BOLD", fill_color=(233, 236, 239)),
        line_height=4.5,
        text_align="LEFT",
    ) as table:
        for cells in (header, *rows):
            row = table.row()
            for cell in cells:
                row.cell(cell)


def _figures_table(pdf: FPDF, first: str, groups: list[tuple[str, Figures]]) -> None:
    header = [
        first,
        BOTH["raised"],
        BOTH["followed_up"],
        BOTH["cleared_by_itself"],
        BOTH["ack"],
        BOTH["arrive"],
    ]
    rows = [
        [
            name,
            str(f.raised),
            f"{f.followed_up} ({f.follow_up_rate:.0%})",
            str(f.cleared_by_itself),
            duration(f.median_ack_s),
            duration(f.median_arrive_s),
        ]
        for name, f in groups
    ]
    _table(pdf, header, rows, (30, 14, 20, 16, 16, 16))


def _workers(pdf: FPDF, report: CareReport) -> None:
    header = [
        BOTH["worker"],
        BOTH["households"],
        BOTH["visited"],
        BOTH["visits"],
        BOTH["raised"],
        BOTH["followed_up"],
        BOTH["ack"],
        BOTH["arrive"],
    ]
    rows = [
        [
            f"{w.name} ({w.worker})",
            str(w.households),
            f"{w.visited} ({w.visited / w.households:.0%})" if w.households else "0",
            str(w.visits),
            str(w.alerts.raised),
            str(w.alerts.followed_up),
            duration(w.alerts.median_ack_s),
            duration(w.alerts.median_arrive_s),
        ]
        for w in report.by_worker
    ]
    _table(pdf, header, rows, (30, 12, 18, 12, 12, 14, 15, 15))


def _inactivity(pdf: FPDF, report: CareReport) -> None:
    header = [
        BOTH["household"],
        BOTH["rule"],
        BOTH["opened"],
        BOTH["ack"],
        BOTH["arrive"],
        BOTH["condition"],
        BOTH["outcome"],
    ]
    zone = report.zone
    rows = [
        [
            line.household,
            line.rule,
            _local(line.opened_at, zone),
            duration(line.ack_s),
            duration(line.arrive_s),
            BOTH.get(line.condition or "", line.condition or "-"),
            line.outcome,
        ]
        for line in report.inactivity
    ]
    _table(pdf, header, rows, (24, 20, 20, 13, 13, 15, 30))


def _devices(pdf: FPDF, report: CareReport) -> None:
    header = [BOTH["household"], BOTH["offline"], BOTH["low_battery"]]
    rows = [
        [d.household, ", ".join(d.offline) or "-", ", ".join(d.low_battery) or "-"]
        for d in report.devices
    ]
    _table(pdf, header, rows, (30, 35, 35))


def _lines(pdf: FPDF, lines: list[str]) -> None:
    pdf.set_font("cjk", "", 8)
    if not lines:
        pdf.cell(0, 5, BOTH["none"], new_x="LMARGIN", new_y="NEXT")
        return
    pdf.multi_cell(0, 4.5, "   ".join(lines), new_x="LMARGIN", new_y="NEXT")


def _local(at: datetime, zone: str) -> str:
    return f"{at.astimezone(ZoneInfo(zone)):%m-%d %H:%M}"
