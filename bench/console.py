"""`python -m bench console [--quick]`: the duty console's figures, measured in Debian's chromium.

- publish to board: an SOS press published -> its row on the signed-in board (no reload), p50 and
  p99, at idle and under a paced background load of 80 % of the rate the agent sustains while
  publishers and the browser share the machine with it (measured just before under a paced load
  above it; the rate of draining a preloaded queue alone is higher, and 80 % of that kept the
  agent behind the whole time here);
- a press that has not reached the board 30 s after the last one is waited for until the agent
  has taken in everything published: `*_late` counts those that came after the 30 s, `*_missing`
  those that never came (a lost SOS), checked against the alert API too (`stored_missing`);
- the board with 5,000 open alerts: first paint, the load event, a live refresh of the whole
  board (a reconnect, a burst), the fetch of one row, and the page's own row fetches after 5
  alert events (what a single event costs);
- per phase, where a press's time went: published -> heard by the page (`heard_*`), heard ->
  its row drawn (`page_*`), and the board requests out around the slowest three (`slowest`);
- the size of the page and of its assets on a first visit.

Both ends of a latency are wall-clock milliseconds of this machine: `time.time()` right before the
publish, `Date.now()` in a MutationObserver when the row appears. Needs mosquitto,
victoria-metrics and chromium, as the tests do.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Page

from bench.ingest import measure_ingest
from bench.latency import AlertListener
from bench.machine import load_average
from bench.progress import Probe
from bench.publish import PublisherPool, PublishResult
from bench.rig import BenchError, Rig
from bench.traffic import Traffic, min_span_s, roster, sos_press
from tests.agent_process import TOKEN, AgentProcess
from tests.browser import chromium
from tests.mqtt_publisher import Publisher

COMMUNITY = "bench-console"
LOAD_SHARE = 0.8  # issue #15: publish-to-board under 80 % of the agent's ingest rate
BIG_BOARD = 5000


@dataclass(frozen=True)
class Plan:
    presses: int
    interval_s: float  # between presses: each row lands on a settled board
    ingest_messages: int  # to measure the agent's ingest rate
    board_alerts: int


FULL = Plan(presses=100, interval_s=0.3, ingest_messages=100_000, board_alerts=BIG_BOARD)
QUICK = Plan(presses=30, interval_s=0.3, ingest_messages=20_000, board_alerts=BIG_BOARD)
WINDOW_S = 30.0  # a press later than this after the last one is late
CATCH_UP_S = 180.0  # how long a late press is waited for once the load stopped
SATURATE = 1.3  # the calibrating load, as a share of the drain rate: more than the agent takes
CALIBRATE_S = 12.0

_WATCH = """() => {
    window.__seen = {};
    window.__alert = {};  // device -> its alert's id, for the time its event was heard
    window.__heard = {};  // alert id -> when the page heard its first event (Date.now())
    if (!window.__hearing) {
        window.__hearing = true;
        document.getElementById('rows-watch').addEventListener('htmx:sseMessage', e => {
            let id = null;
            try { id = JSON.parse(e.detail.data).id; } catch (x) { return; }
            if (id && !(id in window.__heard)) window.__heard[id] = Date.now();
        });
    }
    const note = () => document.querySelectorAll('#board tr[data-device]').forEach(r => {
        if (!(r.dataset.device in window.__seen)) {
            window.__seen[r.dataset.device] = Date.now();
            window.__alert[r.dataset.device] = r.dataset.alert;
        }
    });
    note();
    new MutationObserver(note).observe(document.getElementById('board'),
                                       {childList: true, subtree: true});
}"""


def _say(text: str) -> None:
    print(f"[bench console] {text}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least q % of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _sign_in(page: Page) -> None:
    page.goto("/console/")
    page.fill("#token", TOKEN)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/console/")
    page.wait_for_function(
        "() => document.getElementById('link-state').textContent.trim() === '实时'"
    )


def _sizes(page: Page) -> dict[str, int]:
    """Bytes of the board page and each asset on a first visit (an empty cache)."""
    page.goto("/console/", wait_until="load")
    found: dict[str, int] = page.evaluate(
        """() => { const out = {};
            const nav = performance.getEntriesByType('navigation')[0];
            out['page'] = nav.encodedBodySize;
            for (const r of performance.getEntriesByType('resource'))
                if (r.name.includes('/console/static/'))
                    out[r.name.split('/').pop().replace(/\\.[0-9a-f]{8,}\\./, '.')] = r.encodedBodySize;
            return out; }"""
    )
    return found


@dataclass(frozen=True)
class Presses:
    """Per press: publish -> the API's stream (the agent) and publish -> the board (the page)."""

    stream_ms: list[float]
    board_ms: list[float]
    board_fetches: int  # whole-board fetches (/console/board) the page made meanwhile
    board_fetch_ms: float | None  # their mean duration
    row_fetches: int  # row fetches (/console/board/rows): an event redraws its row alone
    row_fetch_ms: float | None
    stream_late: int = 0  # came after the window (the agent was behind), counted in *_ms too
    board_late: int = 0
    stored_missing: int = 0  # not in the alert API once the agent caught up: lost
    page: dict[str, Any] = dataclasses.field(default_factory=dict)  # `_page_part`


# the page's board requests, on Date.now()'s clock: [kind, start, end]
_REQUESTS = """() => performance.getEntriesByType('resource')
    .filter(r => r.name.includes('/console/board'))
    .map(r => [r.name.includes('/console/board/rows') ? 'rows' : 'whole',
               performance.timeOrigin + r.startTime, performance.timeOrigin + r.responseEnd])"""


def _page_part(
    page: Page, sent: dict[str, tuple[float, float]], seen: dict[str, float]
) -> dict[str, Any]:
    """Where each press's time on the page went: published -> its event heard by the page (the
    agent, its stream and the browser's SSE), heard -> its row drawn (the page's fetches); and for
    the slowest presses, the board requests out between their hearing and their row."""
    heard_at: dict[str, float] = page.evaluate("() => window.__heard")
    alert_of: dict[str, str] = page.evaluate("() => window.__alert")
    requests: list[tuple[str, float, float]] = page.evaluate(_REQUESTS)
    heard, after, slowest = [], [], []
    for device, (wall, _) in sent.items():
        drawn = seen.get(device)
        at = heard_at.get(alert_of.get(device, ""))
        if drawn is None or at is None:
            continue
        heard.append(at - wall)
        after.append(drawn - at)
        slowest.append((drawn - wall, device, wall, at, drawn))
    slowest.sort(reverse=True)
    detail = []
    for total, device, wall, at, drawn in slowest[:3]:
        out = [
            f"{kind} {start - at:+.0f}..{end - at:+.0f}"
            for kind, start, end in requests
            if start <= drawn and end >= at - 1
        ]
        detail.append(
            f"{device}: {total:.0f} ms = heard {at - wall:.0f} + page {drawn - at:.0f}; "
            f"requests (ms from heard): {', '.join(out)}"
        )
    return {
        "heard_p50_ms": _ms(percentile(heard, 50)),
        "heard_p99_ms": _ms(percentile(heard, 99)),
        "page_p50_ms": _ms(percentile(after, 50)),
        "page_p99_ms": _ms(percentile(after, 99)),
        "slowest": detail,
    }


def _ms(value: float | None) -> int | None:
    return round(value) if value is not None else None


def _arrivals(page: Page, sent: dict[str, tuple[float, float]], until: float) -> dict[str, float]:
    """Poll the board until every press of `sent` is on it or `until` (monotonic) passes.

    Only these presses count: the board still shows the rows of earlier ones (the idle phase's
    SOS alerts stay open), and counting those ended the wait at once, so presses still on their
    way were reported as never arriving.
    """
    seen: dict[str, float] = {}
    while time.monotonic() < until and len(seen) < len(sent):
        shown: dict[str, float] = page.evaluate("() => window.__seen")
        seen = {device: at for device, at in shown.items() if device in sent}
        time.sleep(0.2)
    return seen


def _stored(agent: AgentProcess, devices: set[str]) -> set[str]:
    """Those of `devices` with an alert in the alert API (all communities' newest first)."""
    found: set[str] = set()
    cursor = ""
    while True:
        page = agent.get("/v1/alerts", community=COMMUNITY, limit=500, cursor=cursor)
        found.update(a["device_id"] for a in page["items"] if a["device_id"] in devices)
        cursor = page["next_cursor"]
        if not cursor:
            return found


def _presses(
    page: Page,
    agent: AgentProcess,
    publisher: Publisher,
    listener: AlertListener,
    label: str,
    plan: Plan,
    caught_up: Callable[[], None] = lambda: None,
) -> Presses:
    """Press `plan.presses` buttons; when each reached the API's stream and the board.

    `caught_up` returns once the agent has taken in the background load (ends it first): a
    press not on the board within the window is waited for after that, and looked up in the
    alert API, so a late press is told from a lost one.
    """
    page.evaluate(_WATCH)
    page.evaluate("() => performance.clearResourceTimings()")
    sent: dict[str, tuple[float, float]] = {}
    for number in range(plan.presses):
        device = f"sos-{label}-{number:04d}"
        wall, mono = time.time() * 1000, time.perf_counter()
        publisher.publish(*sos_press(COMMUNITY, f"b{number % 8}", device, 1, int(wall)))
        sent[device] = (wall, mono)
        time.sleep(plan.interval_s)
    last_wall, closed = time.time() * 1000, time.perf_counter() + WINDOW_S
    seen = _arrivals(page, sent, time.monotonic() + WINDOW_S)
    in_time = len(seen)
    stream_in_time = sum(1 for d in sent if listener.arrived(d) is not None)
    stored_missing = 0
    if in_time < len(sent) or stream_in_time < len(sent):
        _say(f"{label}: {len(sent) - in_time} presses not on the board after {WINDOW_S:g} s")
        caught_up()
        seen = _arrivals(page, sent, time.monotonic() + CATCH_UP_S)
        stored_missing = len(set(sent) - _stored(agent, set(sent)))
    late = sum(1 for d in seen.values() if d > last_wall + WINDOW_S * 1000)
    fetches: list[float] = page.evaluate(
        """() => performance.getEntriesByType('resource')
                 .filter(r => r.name.includes('/console/board')
                              && !r.name.includes('/console/board/rows')).map(r => r.duration)"""
    )
    row_fetches: list[float] = page.evaluate(
        """() => performance.getEntriesByType('resource')
                 .filter(r => r.name.includes('/console/board/rows')).map(r => r.duration)"""
    )
    stream = [
        (arrived - mono) * 1000
        for d, (_, mono) in sent.items()
        if (arrived := listener.arrived(d)) is not None
    ]
    return Presses(
        stream_ms=stream,
        board_ms=[seen[d] - wall for d, (wall, _) in sent.items() if d in seen],
        board_fetches=len(fetches),
        board_fetch_ms=round(sum(fetches) / len(fetches)) if fetches else None,
        row_fetches=len(row_fetches),
        row_fetch_ms=round(sum(row_fetches) / len(row_fetches)) if row_fetches else None,
        stream_late=sum(
            1 for d in sent if (arrived := listener.arrived(d)) is not None and arrived > closed
        ),
        board_late=late,
        stored_missing=stored_missing,
        page=_page_part(page, sent, seen),
    )


def _sustained(pool: PublisherPool, probe: Probe, rate: float) -> float:
    """The agent's acknowledged messages per second under a paced load above what it takes in:
    its capacity with the publishers and the signed-in page beside it (every alert event
    fetches its row, or a burst the board, from the agent's event loop), which 80 % load is a
    share of. Draining a
    preloaded queue alone was faster, and 80 % of that kept the agent behind all the time."""
    seconds = CALIBRATE_S
    traffic = Traffic(
        "bench-live",
        roster(2000, "bench-live"),
        int(rate * seconds),
        seconds,
        time.time() + seconds,
    )
    pool.prepare(traffic, rate)
    before = probe.counts()
    pool.go()
    time.sleep(2.0)  # past the start: the window is full from here on
    start = probe.counts()
    time.sleep(seconds - 4.0)
    end = probe.counts()
    sent = pool.stop()
    probe.follow("acked", before.acked + sent.sent, CATCH_UP_S)  # caught up before going on
    return min(rate, (end.acked - start.acked) / (end.at - start.at))


def _open_alerts(agent: AgentProcess, community: str) -> int:
    total, cursor = 0, ""
    while True:
        page = agent.get(
            "/v1/alerts", community=community, status="active", limit=500, cursor=cursor
        )
        total += len(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return total


def _big_board(
    page: Page, agent: AgentProcess, publisher: Publisher, alerts: int
) -> dict[str, float]:
    """Fill a community with `alerts` open SOS alerts; time the board's page and refreshes."""
    community = "bench-5k"
    for step in range(0, alerts, 500):  # mosquitto queues at most 1,000 for a busy subscriber
        publisher.publish_many(
            sos_press(community, f"b{n % 40}", f"sos-5k-{n}", 1, int(time.time() * 1000))
            for n in range(step, min(step + 500, alerts))
        )
        deadline = time.monotonic() + 120
        while _open_alerts(agent, community) < min(step + 500, alerts):
            if time.monotonic() > deadline:
                raise BenchError(f"{step + 500} open alerts did not come within 120 s")
            time.sleep(0.5)
    started = time.monotonic()
    page.goto(f"/console/?community={community}", wait_until="domcontentloaded")
    shown_ms = (time.monotonic() - started) * 1000
    page.wait_for_load_state("load")
    load_ms = (time.monotonic() - started) * 1000
    refresh = """async (url) => { const t = performance.now();
        await htmx.ajax('GET', url, {target: '#board', swap: 'innerHTML'});
        return performance.now() - t; }"""
    refresh_ms = page.evaluate(refresh, f"/console/board?community={community}")
    # what an event costs the page now: its row alone (the first drawn, with the counters)
    row_ms = page.evaluate(
        """async (community) => {
            const id = document.querySelector('#board tr[data-alert]').dataset.alert;
            const t = performance.now();
            const url = `/console/board/rows?community=${community}&alert=${id}`;
            await (await fetch(url, {headers: {'HX-Request': 'true'}})).text();
            return performance.now() - t; }""",
        community,
    )
    # what an event costs that board: the page's own fetch of the row, after each of 5 presses
    # again (a `repeated` event of an open alert each). A row fetched right after an event used
    # to read every open alert again; the figure above is of a board with no event since
    rows = """() => performance.getEntriesByType('resource')
        .filter(r => r.name.includes('/console/board/rows')).map(r => r.duration)"""
    page.evaluate("() => performance.clearResourceTimings()")
    for n in range(5):
        press = sos_press(community, f"b{n % 40}", f"sos-5k-{n}", 2, int(time.time() * 1000))
        publisher.publish(*press)
        page.wait_for_function(f"() => ({rows})().length > {n}", timeout=60_000)
    after_event: list[float] = page.evaluate(rows)
    page.goto(f"/console/?community={community}&all=1", wait_until="load")
    all_ms = page.evaluate(refresh, f"/console/board?community={community}&all=1")
    return {
        "board_5000_shown_ms": round(shown_ms),
        "board_5000_load_ms": round(load_ms),
        "board_5000_refresh_ms": round(refresh_ms),
        "board_5000_row_fetch_ms": round(row_ms),
        "board_5000_row_after_event_p50_ms": _ms(percentile(after_event, 50)),
        "board_5000_row_after_event_max_ms": _ms(max(after_event)),
        "board_5000_all_rows_refresh_ms": round(all_ms),
    }


def run(plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {"mode": "quick" if plan.presses < FULL.presses else "full"}
    out["presses"] = plan.presses
    out["load_average_before"] = load_average()
    with Rig() as rig:
        pool = PublisherPool(rig.broker.host, rig.broker.port, 2)
        agent = rig.agent("console")
        try:
            probe = Probe(agent)
            members = roster(2000, "bench-ingest")
            span = min_span_s(plan.ingest_messages, len(members))
            _say(f"agent ingest rate: {plan.ingest_messages:,} messages queued, then drained")
            ingest = measure_ingest(
                rig,
                pool,
                probe,
                Traffic("bench-ingest", members, plan.ingest_messages, span, time.time()),
            )
            out["ingest_msgs_per_s"] = round(ingest.rate)
            _say(f"ingest: {ingest.rate:,.0f} msgs/s")
            with chromium() as browser, Publisher(rig.broker.url) as publisher:
                context = browser.new_context(
                    base_url=agent.url, viewport={"width": 1920, "height": 1080}, locale="zh-CN"
                )
                context.set_default_timeout(60_000)
                page = context.new_page()
                _sign_in(page)
                out["sizes_bytes"] = _sizes(page)
                _say(f"sizes: {out['sizes_bytes']}")

                listener = AlertListener(agent, COMMUNITY)
                idle = _presses(page, agent, publisher, listener, "idle", plan)
                out["idle"] = _summary(idle, plan.presses)
                _say(f"idle: {out['idle']}")

                # the rate the agent keeps up with while publishers and this page run beside it
                sustained = _sustained(pool, probe, SATURATE * ingest.rate)
                out["sustained_msgs_per_s"] = round(sustained)
                _say(f"sustained beside publishers and the page: {sustained:,.0f} msgs/s")

                rate = LOAD_SHARE * sustained
                duration = plan.presses * plan.interval_s + 15.0
                load = roster(2000, "bench-load")
                pool.prepare(
                    Traffic(
                        "bench-load", load, int(rate * duration), duration, time.time() + duration
                    ),
                    rate,
                )
                acked_before = probe.counts().acked
                pool.go()
                stopped: list[PublishResult] = []
                behind: list[float] = []

                def caught_up() -> None:
                    if not stopped:
                        stopped.append(pool.stop())
                        behind.append(stopped[0].sent - (probe.counts().acked - acked_before))
                    with contextlib.suppress(BenchError):
                        probe.follow("acked", acked_before + stopped[0].sent, CATCH_UP_S)

                try:
                    time.sleep(3.0)  # the load settles before the first press
                    loaded = _presses(page, agent, publisher, listener, "load80", plan, caught_up)
                finally:
                    if not stopped:
                        stopped.append(pool.stop())
                        behind.append(stopped[0].sent - (probe.counts().acked - acked_before))
                    listener.close()
                out["load_80"] = {
                    **_summary(loaded, plan.presses),
                    "background_msgs_per_s": round(stopped[0].rate),
                    # messages published but not yet taken in by the agent when the load ended
                    # (0 when it kept up; a growing queue delays every press behind it)
                    "agent_behind_at_load_end": max(0, round(behind[0])),
                }
                _say(f"80 % load: {out['load_80']}")

                if plan.board_alerts:
                    _say(f"board with {plan.board_alerts:,} open alerts")
                    out.update(_big_board(page, agent, publisher, plan.board_alerts))
                    _say(str({k: v for k, v in out.items() if k.startswith("board_")}))
                context.close()
            probe.close()
        finally:
            pool.close()
    out["load_average_after"] = load_average()
    return out


def _summary(found: Presses, presses: int) -> dict[str, Any]:
    ms = _ms
    board, stream = found.board_ms, found.stream_ms
    return {
        "board_p50_ms": ms(percentile(board, 50)),
        "board_p99_ms": ms(percentile(board, 99)),
        "board_max_ms": ms(max(board)) if board else None,
        "board_missing": presses - len(board),
        "stream_p50_ms": ms(percentile(stream, 50)),
        "stream_p99_ms": ms(percentile(stream, 99)),
        "stream_missing": presses - len(stream),
        "board_late": found.board_late,
        "stream_late": found.stream_late,
        "stored_missing": found.stored_missing,
        "board_fetches": found.board_fetches,
        "board_fetch_mean_ms": found.board_fetch_ms,
        "row_fetches": found.row_fetches,
        "row_fetch_mean_ms": found.row_fetch_ms,
        **found.page,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench console", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer presses, a smaller ingest run")
    parser.add_argument(
        "--board-alerts", type=int, default=BIG_BOARD, help="open alerts of the big board (0: skip)"
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    try:
        result = run(dataclasses.replace(plan, board_alerts=args.board_alerts))
    except BenchError as exc:
        print(f"bench console: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
