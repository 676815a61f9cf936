// The alarm board kept live a row at a time: an alert event fetches that alert's row as the board
// draws it now (/console/board/rows, the board's filters kept) with the counters, and puts the
// row in its place, moves it, or takes it away (resolved, beyond the cap, outside the filter). A
// whole board of 1,000 rows cost 160-400 ms a fetch under load, once per event.
// - Order: rows are kept as `gather` sorts them, by data-order ascending, then the alert id
//   descending (board.row_order). A capped board's last rows come along, so a row leaving pulls
//   the next one in, and rows past the cap go.
// - Events that arrive while a request is out go in the next one (up to 10). A burst (more than
//   10 events within 250 ms) is one whole-board fetch 250 ms later, as before this file.
// - Unanswered life-safety alarms never wait for a whole board: heard while a burst gathers
//   (also just before it was seen) or while a whole board is out, they are fetched as rows at
//   once (or when the row request out returns), whole board out or not. Under load other
//   alerts' events kept the board in bursts, and an SOS heard just before one was seen, or while
//   a whole board was out, waited for the gathering, the whole fetch and the drawing of a whole
//   board (0.5-0.9 s after it was heard: the slowest presses at 80 % load).
// - Whole-board fetches (a burst, a reconnect in console.js, a board that is or becomes empty)
//   are htmx's own; while one is out only those alarms' rows go out. A row answer is dropped
//   when a whole board asked for after it has been drawn (that board is at least as new); rows
//   fetched while a whole board was out are fetched again once it is drawn (it may be older).
// - After a change the page checks its board against the server's figures (rows drawn, alarms,
//   the last row) and fetches the whole board if they still differ a second later (events on
//   their way settle most), so a missed turn cannot linger.
"use strict";
(function () {
  var MAX_IDS = 10; // the server's limit per request (pages.MAX_ROWS)
  var BURST = 10; // events within BURST_MS beyond which the whole board is fetched instead
  var BURST_MS = 250; // also how long a burst gathers before its whole-board fetch
  var pending = []; // alert ids whose rows are still to fetch
  var alarming = {}; // ... of which unanswered life-safety alarms: id -> true
  var urgent = []; // alarms to fetch ahead of a whole board gathering or out
  var times = []; // when the events of the last BURST_MS came
  var busy = false; // a row request is out
  var wholeOut = 0; // whole-board requests out (htmx sends a queued one before the last ends)
  var wholeSince = -1; // performance.now() when the last whole-board request went out
  var wholeSent = []; // ... when each whole-board request out went out, oldest first
  var drawnSince = -1; // when the last whole board drawn had gone out
  var burstSince = 0;
  var burstTimer = null;
  // the server's figures run ahead of the page while events are still on their way (a burst
  // the agent stored at once), so a disagreement is given this long to be settled by them
  var DOUBT_MS = 1000;
  var doubtTimer = null;

  function redrawAll() {
    clearTimeout(doubtTimer);
    doubtTimer = null;
    clearTimeout(burstTimer);
    burstTimer = null;
    burstSince = 0;
    htmx.trigger("#board", "refresh");
  }

  function drawnAbove(a, b) {
    var x = a.dataset.order, y = b.dataset.order;
    if (x !== y) { return x < y; }
    return a.dataset.alert > b.dataset.alert;
  }

  function place(body, row) {
    var rows = body.rows, lo = 0, hi = rows.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (drawnAbove(rows[mid], row)) { lo = mid + 1; } else { hi = mid; }
    }
    body.insertBefore(row, rows[lo] || null);
  }

  function rowOf(body, id) {
    return body.querySelector("tr[data-alert=\"" + CSS.escape(id) + "\"]");
  }

  // the answer put into the board; true when the board then agrees with the server's figures,
  // false when it does not, null when it cannot take it (fetch the whole board)
  function apply(board, html, asked) {
    var parsed = document.createElement("template");
    parsed.innerHTML = html;
    var update = parsed.content.querySelector("#board-update");
    var table = board.querySelector("table.alerts");
    var body = table && table.tBodies[0];
    var drawn = update ? Number(update.dataset.drawn) : 0;
    if (!update || !body || !drawn) { return null; } // from or to an empty board: small anyway
    board.querySelector(".counters").replaceWith(update.querySelector(".counters"));
    var capped = board.querySelector("#capped");
    if (capped) { capped.remove(); }
    var notice = update.querySelector("#capped");
    if (notice) { table.before(notice); }
    asked.forEach(function (id) {
      var row = rowOf(body, id);
      if (row) { row.remove(); }
    });
    Array.prototype.slice.call(update.querySelectorAll("tbody tr")).forEach(function (row) {
      var old = rowOf(body, row.dataset.alert); // a capped board's last row, drawn already
      if (old) { old.remove(); }
      place(body, row);
    });
    while (body.rows.length > drawn) { body.deleteRow(-1); }
    // every unacknowledged life-safety alarm sounds, drawn or not: the asked ones as they are now
    var alarms = (table.dataset.alarms || "").split(" ").filter(function (id) {
      return id && asked.indexOf(id) < 0;
    });
    update.dataset.alarms.split(" ").forEach(function (id) { if (id) { alarms.push(id); } });
    table.dataset.alarms = alarms.join(" ");
    var last = body.rows[body.rows.length - 1];
    return body.rows.length === drawn && alarms.length === Number(update.dataset.alarmCount) &&
      last.dataset.alert === update.dataset.tail;
  }

  function wholeOutNow() {
    // (a whole board out for 30 s has failed in a way htmx did not report: rows go on)
    return wholeOut && performance.now() - wholeSince < 30000;
  }

  function send() {
    var board = document.getElementById("board");
    if (busy || !board) { return; }
    if (burstTimer || wholeOutNow()) {
      // a whole board gathering or out: only the alarms go ahead, as rows. Those heard since a
      // whole board went out stay pending too: it may draw them as they were before their
      // event, so they are fetched again once it is drawn
      if (urgent.length) {
        var first = urgent.splice(0, MAX_IDS);
        first.forEach(function (id) { delete alarming[id]; });
        request(board, first);
      }
      return;
    }
    if (!pending.length) { return; }
    if (pending.length > MAX_IDS) { redrawAll(); return; }
    var ids = pending;
    pending = [];
    urgent = [];
    alarming = {};
    request(board, ids);
  }

  function request(board, ids) {
    busy = true;
    var sent = performance.now();
    window.ceConsole.fetchFragment(board.dataset.rows, ids)
      .then(function (html) {
        if (drawnSince >= sent) { return; } // a whole board asked for since is at least as new
        var agrees = apply(board, html, ids);
        if (agrees === null) { redrawAll(); return; }
        if (agrees) {
          clearTimeout(doubtTimer);
          doubtTimer = null;
        } else if (!doubtTimer && !wholeOutNow()) { // (a whole board out settles it)
          doubtTimer = setTimeout(redrawAll, DOUBT_MS);
        }
        document.body.dispatchEvent(new CustomEvent("ce:swapped", { bubbles: true }));
      })
      .catch(redrawAll)
      .finally(function () { busy = false; send(); });
  }

  function heard(id, alarm) {
    var now = performance.now();
    times.push(now);
    while (times[0] < now - BURST_MS) { times.shift(); }
    if (pending.indexOf(id) < 0) { pending.push(id); }
    if (alarm) { alarming[id] = true; } else { delete alarming[id]; } // as its last event says
    if (times.length > BURST && !burstSince) {
      burstSince = now;
      // the alarms heard just before the burst was seen go ahead of it too
      urgent = pending.filter(function (p) { return alarming[p] && p !== id; });
    }
    if (burstSince && !burstTimer) { // one whole board BURST_MS after it was seen: the agent
      // commits a burst in a few batches, and a fetch after the first would be followed by
      // another for the rest
      burstTimer = setTimeout(redrawAll, BURST_MS);
    }
    if (alarm && (burstTimer || wholeOutNow()) && urgent.indexOf(id) < 0) { urgent.push(id); }
    send();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var watch = document.getElementById("rows-watch");
    var board = document.getElementById("board");
    if (!watch || !board) { return; }
    watch.addEventListener("htmx:sseMessage", function (evt) {
      var data = {};
      try { data = JSON.parse(evt.detail.data); } catch (e) { return; }
      if (data.id) { heard(String(data.id), data.alarm === true); } // a repeat too: its row
      // says how many times
    });
    board.addEventListener("htmx:beforeRequest", function (evt) {
      if (evt.target !== board) { return; }
      // every event heard so far is in this answer
      wholeOut += 1;
      wholeSince = performance.now();
      wholeSent.push(wholeSince);
      pending = [];
      alarming = {};
      // (alarms not fetched yet still go ahead as rows: this board is drawn hundreds of ms later)
      times = [];
      clearTimeout(doubtTimer);
      doubtTimer = null;
      clearTimeout(burstTimer);
      burstTimer = null;
      burstSince = 0;
    });
    board.addEventListener("htmx:afterRequest", function (evt) {
      if (evt.target !== board) { return; }
      wholeOut = Math.max(0, wholeOut - 1);
      var since = wholeSent.shift();
      if (evt.detail.successful && since !== undefined) { drawnSince = Math.max(drawnSince, since); }
      send();
    });
  });
})();
