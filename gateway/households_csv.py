"""The household register as a CSV file, the way communities already keep it in Excel.

Export writes UTF-8 with a byte-order mark (so Excel opens the Chinese right) and Chinese headers.
Import reads UTF-8 (with or without the mark) or GB18030 (what Excel in Chinese saves as "CSV"),
with Chinese or English headers, checks every line and either takes all of them or none, naming
each problem by its line number in the file (the header is line 1) and column.

Cells holding several entries separate them by `;` and their parts by `:`:

    居民 (residents)   张桂英:13812345678:1941; 李大爷::1938        name:phone:birth year
    家属 (family)      李明:儿子:13900001111:10:li-ming             name:relation:phone:minutes:person id
    设备 (devices)     sos-1-101; door-1-101

A family member's minutes are how long an unacknowledged SOS or fall waits before they are
called (empty: 10; `-`: never called).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from edge.enrich import DEFAULT_CALL_AFTER_MINUTES, CareLevel, Household
from gateway.api.untrusted_text import csv_cell, free_text, one_line

BOM = "\ufeff"
MAX_LINES = 20_000  # a community's register, with room; a larger file is refused whole
MAX_PROBLEMS = 50  # enough to see a systematic mistake, not 20,000 lines of it

# (key, Chinese header, English header)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("community", "小区", "community"),
    ("building", "楼栋", "building"),
    ("floor", "楼层", "floor"),
    ("unit", "房号", "unit"),
    ("living_alone", "独居", "living_alone"),
    ("care_level", "照护等级", "care_level"),
    ("residents", "居民", "residents"),
    ("family", "家属", "family"),
    ("device_ids", "设备", "devices"),
    ("care_worker_id", "网格员编号", "care_worker_id"),
    ("care_worker_name", "网格员姓名", "care_worker_name"),
    ("care_worker_phone", "网格员电话", "care_worker_phone"),
    ("away_until", "外出至", "away_until"),
    ("away_reason", "外出原因", "away_reason"),
    ("note", "备注", "note"),
)
_HEADER_KEYS = {h: key for key, zh, en in COLUMNS for h in (zh, en, key)}
_LEVELS_ZH = {
    "自理": CareLevel.INDEPENDENT,
    "半失能": CareLevel.PARTIAL,
    "失能": CareLevel.DEPENDENT,
}
_LEVEL_NAMES = {v: k for k, v in _LEVELS_ZH.items()}
_YES = {"是", "yes", "y", "true", "1", "独居"}
_NO = {"否", "no", "n", "false", "0", ""}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in an imported file: where, and what."""

    line: int
    column: str
    problem: str


class ImportRefused(ValueError):
    """The file as a whole cannot be read (encoding, header, size)."""


def export_csv(households: Iterable[Household]) -> str:
    """The register as CSV text: a BOM, Chinese headers, one line per household."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")  # what Excel writes and expects
    writer.writerow([zh for _, zh, _ in COLUMNS])
    for h in households:
        worker = h.care_worker
        cells = [
            h.community,
            h.building,
            h.floor or "",
            h.unit,
            "是" if h.living_alone else "否",
            _LEVEL_NAMES[h.care_level],
            "; ".join(
                ":".join([r.name, r.phone or "", str(r.birth_year or "")]).rstrip(":")
                for r in h.residents
            ),
            "; ".join(
                ":".join(
                    [
                        f.name,
                        f.relation,
                        f.phone,
                        "-" if f.call_after_minutes is None else str(f.call_after_minutes),
                        f.person_id or "",
                    ]
                ).rstrip(":")
                for f in h.family
            ),
            "; ".join(h.device_ids),
            worker.person_id if worker else "",
            worker.name if worker else "",
            (worker.phone or "") if worker else "",
            h.away_until.isoformat() if h.away_until else "",
            h.away_reason or "",
            h.note or "",
        ]
        # a cell a spreadsheet would run as a formula is written as text (OWASP CSV injection)
        writer.writerow([csv_cell(cell) for cell in cells])
    return out.getvalue()


def decode(data: bytes) -> str:
    """The file's text: UTF-8 (a BOM is dropped), else GB18030 (Excel's "CSV" in Chinese)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise ImportRefused("the file is neither UTF-8 nor GB18030 text") from None
    return text.removeprefix(BOM)


def parse_csv(data: bytes) -> tuple[list[tuple[int, Household]], list[Problem]]:
    """Every line of the file as (line number, household), and every problem found (nothing is
    stored here).

    Raises ImportRefused when the file as a whole cannot be read.
    """
    reader = csv.reader(io.StringIO(decode(data), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportRefused("the file is empty: expected a header line") from None
    except csv.Error as exc:
        raise ImportRefused(f"line 1: {exc}") from None
    keys = [_HEADER_KEYS.get(h.strip().removeprefix(BOM)) for h in header]
    unknown = [h for h, k in zip(header, keys, strict=True) if k is None and h.strip()]
    if unknown:
        known = "、".join(zh for _, zh, _ in COLUMNS)
        raise ImportRefused(f"line 1: unknown column {unknown[0]!r} (columns: {known})")
    for needed in ("community", "building", "unit"):
        if needed not in keys:
            zh = next(z for k, z, _ in COLUMNS if k == needed)
            raise ImportRefused(f"line 1: the column {zh} ({needed}) is missing")
    households: list[tuple[int, Household]] = []
    problems: list[Problem] = []
    seen_ids: dict[str, int] = {}
    seen_devices: dict[str, int] = {}
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(reader.line_num, "", str(exc)))
            break
        line = reader.line_num
        if line > MAX_LINES + 1:
            raise ImportRefused(f"more than {MAX_LINES} households: split the file")
        if not any(cell.strip() for cell in row):
            continue  # Excel leaves empty lines at the end
        cells = {k: _uncell(row[i]) if i < len(row) else "" for i, k in enumerate(keys) if k}
        household, found = _household(cells, line)
        problems.extend(found)
        if household is None:
            continue
        if household.id in seen_ids:
            problems.append(
                Problem(line, "房号", f"{household.id} is also on line {seen_ids[household.id]}")
            )
        seen_ids.setdefault(household.id, line)
        for device in household.device_ids:
            if device in seen_devices:
                problems.append(
                    Problem(line, "设备", f"device {device} is also on line {seen_devices[device]}")
                )
            seen_devices.setdefault(device, line)
        households.append((line, household))
    return households, problems[:MAX_PROBLEMS]


def _household(cells: dict[str, str], line: int) -> tuple[Household | None, list[Problem]]:
    problems: list[Problem] = []
    values: dict[str, Any] = {
        "community": cells.get("community", ""),
        "building": cells.get("building", ""),
        "unit": cells.get("unit", ""),
        "floor": cells.get("floor") or None,
        "note": cells.get("note") or None,
        "away_reason": cells.get("away_reason") or None,
        "device_ids": [d.strip() for d in cells.get("device_ids", "").split(";") if d.strip()],
    }
    alone = cells.get("living_alone", "").lower()
    if alone in _YES:
        values["living_alone"] = True
    elif alone in _NO:
        values["living_alone"] = False
    else:
        problems.append(Problem(line, "独居", f"{alone!r}: expected 是 or 否"))
    level = cells.get("care_level", "")
    if level:
        values["care_level"] = _LEVELS_ZH.get(level, level)
    residents = []
    for part in _entries(cells.get("residents", "")):
        name, phone, year = [*part, "", "", ""][:3]
        resident: dict[str, Any] = {"name": name, "phone": phone or None}
        if year:
            if not year.isdigit():
                problems.append(Problem(line, "居民", f"birth year {year!r} is not a year"))
                continue
            resident["birth_year"] = int(year)
        residents.append(resident)
    values["residents"] = residents
    family = []
    for part in _entries(cells.get("family", "")):
        name, relation, phone, minutes, person = [*part, "", "", "", "", ""][:5]
        member: dict[str, Any] = {"name": name, "relation": relation, "phone": phone}
        if minutes == "-":
            member["call_after_minutes"] = None
        elif minutes:
            if not minutes.isdigit():
                problems.append(Problem(line, "家属", f"minutes {minutes!r} are not a number"))
                continue
            member["call_after_minutes"] = int(minutes)
        else:
            member["call_after_minutes"] = DEFAULT_CALL_AFTER_MINUTES
        if person:
            member["person_id"] = person
        family.append(member)
    values["family"] = family
    worker = cells.get("care_worker_id", "")
    if worker or cells.get("care_worker_name"):
        values["care_worker"] = {
            "person_id": worker,
            "name": cells.get("care_worker_name", ""),
            "phone": cells.get("care_worker_phone") or None,
        }
    away = cells.get("away_until", "")
    if away:
        try:
            values["away_until"] = datetime.fromisoformat(away)
        except ValueError:
            problems.append(Problem(line, "外出至", f"{away!r} is not a date and time"))
    if problems:
        return None, problems
    try:
        household = Household.model_validate(values)
    except ValidationError as exc:
        return None, [
            # the value itself may be personal data: the message names the field, not the value
            Problem(line, _column_of(err["loc"]), err["msg"])
            for err in exc.errors(include_input=False)
        ]
    found = text_problems(household)
    if found:
        return None, [
            Problem(line, _column_of(tuple(where.split("."))), why) for where, why in found
        ]
    return household, []


def text_problems(household: Household) -> list[tuple[str, str]]:
    """Control or bidirectional-override characters where people will read the text: (field,
    problem) pairs; names, phones and ids on one line, notes and reasons with line breaks."""
    lines: list[tuple[str, str | None]] = [("floor", household.floor)]
    for n, r in enumerate(household.residents):
        lines += [(f"residents.{n}.name", r.name), (f"residents.{n}.phone", r.phone)]
    for n, f in enumerate(household.family):
        lines += [(f"family.{n}.name", f.name), (f"family.{n}.relation", f.relation)]
    if household.care_worker is not None:
        lines += [("care_worker.name", household.care_worker.name)]
    lines += [(f"device_ids.{n}", d) for n, d in enumerate(household.device_ids)]
    texts = [("note", household.note), ("away_reason", household.away_reason)]
    found = []
    # the register's CSV writes several people in one cell, separated by ';' and ':'
    people = [(w, v) for w, v in lines if w.startswith(("residents.", "family.")) and v]
    found += [
        (where, "';' and ':' separate people in the register's CSV: not allowed here")
        for where, value in people
        if ";" in value or ":" in value
    ]
    for checks, check in ((lines, one_line), (texts, free_text)):
        for where, value in checks:
            if value is None:
                continue
            try:
                check(value)
            except ValueError as exc:
                found.append((where, str(exc)))
    return found


def _uncell(value: str) -> str:
    """A cell as export wrote it, back: the quote `csv_cell` put before a formula-like text off."""
    value = value.strip()
    if value.startswith("'") and csv_cell(value[1:]) == value:
        return value[1:]
    return value


def _entries(cell: str) -> list[list[str]]:
    return [[p.strip() for p in part.split(":")] for part in cell.split(";") if part.strip()]


def _column_of(loc: tuple[int | str, ...]) -> str:
    """The Chinese header of the column a validation error is about."""
    if not loc:
        return ""
    first = str(loc[0])
    key = {"residents": "residents", "family": "family", "care_worker": "care_worker_id"}.get(
        first, first
    )
    zh = next((z for k, z, _ in COLUMNS if k == key), first)
    rest = ".".join(str(p) for p in loc[1:])
    return f"{zh}.{rest}" if rest else zh
