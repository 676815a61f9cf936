// The building board at scale: an alert event redraws only the building of that alert, not the
// whole board (5,000 units are ~750 KB). Events are gathered while a request is out and sent as
// one request (?alert=a&alert=b...); the answer is one <section> per building, swapped in by id.
// A building the board does not have yet, or a burst of events, redraws the whole board instead.
// A whole-board redraw that was already on its way when a building changed is followed by that
// building again, so an older answer never hides a newer state. The whole board is fetched again
// only when the stream (re)connects (console.js: whatever changed while it was down) and every
// 5 minutes as a safety net (was every 30 s: 750 KB for 5,000 units, for nothing while live).
"use strict";
(function () {
  var MAX_IDS = 50; // the server's limit per request (building_pages.MAX_PLACES)
  var pending = [];
  var busy = false;
  var boardSince = null; // when the whole-board request being answered was sent
  var recent = []; // [time, alert id] of buildings swapped in, for a whole-board redraw to redo

  function redrawAll() { htmx.trigger("#board", "refresh"); }

  function send() {
    var board = document.getElementById("board");
    if (busy || !pending.length || !board) { return; }
    if (pending.length > MAX_IDS) { pending = []; redrawAll(); return; }
    var ids = pending; pending = [];
    busy = true;
    window.ceConsole.fetchFragment(board.dataset.places, ids)
      .then(function (html) {
        var parsed = document.createElement("template");
        parsed.innerHTML = html;
        var missing = false;
        parsed.content.querySelectorAll("section.building").forEach(function (section) {
          var old = document.getElementById(section.id);
          if (old) { old.replaceWith(section); } else { missing = true; }
        });
        var now = performance.now();
        ids.forEach(function (id) { recent.push([now, id]); });
        if (missing) { redrawAll(); }
        document.body.dispatchEvent(new CustomEvent("ce:swapped", { bubbles: true }));
      })
      .catch(redrawAll)
      .finally(function () { busy = false; send(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var watch = document.getElementById("places-watch");
    var board = document.getElementById("board");
    if (!watch || !board) { return; }
    watch.addEventListener("htmx:sseMessage", function (evt) {
      var data = {};
      try { data = JSON.parse(evt.detail.data); } catch (e) { return; }
      if (!data.id || data.kind === "repeated") { return; } // a repeat changes no colour
      if (pending.indexOf(data.id) < 0) { pending.push(data.id); }
      send();
    });
    board.addEventListener("htmx:beforeRequest", function (evt) {
      if (evt.target === board) { boardSince = performance.now(); }
    });
    board.addEventListener("htmx:afterSwap", function (evt) {
      if (evt.target !== board || boardSince === null) { return; }
      var since = boardSince;
      boardSince = null;
      recent.forEach(function (seen) {
        if (seen[0] >= since && pending.indexOf(seen[1]) < 0) { pending.push(seen[1]); }
      });
      recent = [];
      send();
    });
  });
})();
