// The duty console's behaviour beyond htmx: keep the board live across drops, and make
// life-safety alarms heard (a repeating tone), seen (a flashing title) and notified until someone
// acknowledges them. Muting is per browser (localStorage), visible, and ends by itself. Also the
// one way the live pages fetch the fragment of some alerts (window.ceConsole.fetchFragment).
"use strict";
(function () {
  var MUTE_KEY = "ce-console-mute-until";
  var MUTE_MS = 10 * 60 * 1000;
  var BEEP_EVERY_MS = 2500;
  var NOTIFY_EVERY_MS = 30000;
  var audio = null;
  var beepTimer = null;
  var titleTimer = null;
  var baseTitle = document.title;
  var notified = {};

  // The fragment for these alert ids: `base` (with its query or without) and alert=<id> for
  // each, fetched as htmx fetches a fragment (not the whole page); its HTML, or a rejection for a
  // status other than 2xx. The board's rows (board.js) and the buildings (buildings.js) use it.
  function fetchFragment(base, ids) {
    var joint = base.indexOf("?") < 0 ? "?" : /[?&]$/.test(base) ? "" : "&";
    var url = base + joint + ids.map(function (id) {
      return "alert=" + encodeURIComponent(id);
    }).join("&");
    return fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.text();
      });
  }
  window.ceConsole = { fetchFragment: fetchFragment };

  function mutedUntil() {
    var until = Number(localStorage.getItem(MUTE_KEY) || 0);
    if (until && until <= Date.now()) { localStorage.removeItem(MUTE_KEY); return 0; }
    return until;
  }

  function alarms() {
    var ids = [];
    document.querySelectorAll("[data-alarms]").forEach(function (el) {
      el.getAttribute("data-alarms").split(" ").forEach(function (id) { if (id) ids.push(id); });
    });
    return ids;
  }

  function beep() {
    if (!audio || audio.state !== "running" || mutedUntil()) { return; }
    var now = audio.currentTime;
    [0, 0.35].forEach(function (offset) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.type = "square";
      osc.frequency.value = 880;
      gain.gain.value = 0.2;
      osc.connect(gain); gain.connect(audio.destination);
      osc.start(now + offset); osc.stop(now + offset + 0.25);
    });
    var root = document.documentElement;
    root.dataset.beeps = String(Number(root.dataset.beeps || 0) + 1);
  }

  function notify(ids) {
    // one notification per alarm, again every 30 s until acknowledged; beyond a few at once, one
    // notification that counts them (thousands of pop-ups would bury the screen and the browser)
    if (!("Notification" in window) || Notification.permission !== "granted" || mutedUntil()) { return; }
    var bar = document.getElementById("alarm-bar");
    var title = bar ? bar.dataset.life : "Alarm";
    var due = ids.filter(function (id) { return !notified[id] || Date.now() - notified[id] >= NOTIFY_EVERY_MS; });
    if (!due.length) { return; }
    due.forEach(function (id) { notified[id] = Date.now(); });
    var shown = due.length <= 3 ? due : ["alarms"];
    shown.forEach(function (id) {
      var n = new Notification(id === "alarms" ? title + " \u00d7" + due.length : title,
                               { tag: id, renotify: true, requireInteraction: true });
      n.onclick = function () {
        window.focus();
        location.href = id === "alarms" ? "/console/" : "/console/alerts/" + encodeURIComponent(id);
      };
    });
    var root = document.documentElement;
    root.dataset.notified = String(Number(root.dataset.notified || 0) + shown.length);
  }

  function showBar() {
    var bar = document.getElementById("alarm-bar");
    if (!bar) { return; }
    bar.hidden = false;
    var until = mutedUntil();
    var start = document.getElementById("start-duty");
    start.hidden = !!(audio && audio.state === "running");
    document.getElementById("mute").hidden = !!until;
    document.getElementById("unmute").hidden = !until;
    bar.classList.toggle("muted", !!until);
    var t = until ? new Date(until).toLocaleTimeString() : "";
    document.getElementById("mute-state").textContent = until ? bar.dataset.muted.replace("{t}", t) : "";
  }

  function tick() {
    var ids = alarms();
    document.documentElement.dataset.alarming = ids.length ? "1" : "0";
    showBar();
    if (ids.length) {
      beep();
      notify(ids);
    }
  }

  function check() {
    var ids = alarms();
    document.documentElement.dataset.alarming = ids.length ? "1" : "0";
    if (ids.length && !beepTimer) {
      tick();
      beepTimer = setInterval(tick, BEEP_EVERY_MS);
      titleTimer = setInterval(function () {
        document.title = document.title === baseTitle ? "\u26a0 " + (document.getElementById("alarm-bar") || {dataset: {}}).dataset.life + " \u26a0" : baseTitle;
      }, 1000);
    } else if (!ids.length && beepTimer) {
      clearInterval(beepTimer); clearInterval(titleTimer);
      beepTimer = null; titleTimer = null;
      document.title = baseTitle;
    }
    showBar();
  }

  function startAudio() {
    // the one click that browsers' autoplay rule asks for; also asks to show notifications
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!audio && Ctx) { audio = new Ctx(); }
    if (audio && audio.state !== "running") { audio.resume().then(showBar); }
    if ("Notification" in window && Notification.permission === "default") { Notification.requestPermission(); }
    sessionStorage.setItem("ce-console-duty", "1");
    showBar();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var start = document.getElementById("start-duty");
    if (start) {
      start.addEventListener("click", startAudio);
      document.getElementById("mute").addEventListener("click", function () {
        localStorage.setItem(MUTE_KEY, String(Date.now() + MUTE_MS)); showBar();
      });
      document.getElementById("unmute").addEventListener("click", function () {
        localStorage.removeItem(MUTE_KEY); showBar();
      });
      // a page reached by a click in this tab may start audio at once (sticky activation)
      if (sessionStorage.getItem("ce-console-duty")) { startAudio(); }
    }
    var live = document.getElementById("live");
    var state = document.getElementById("link-state");
    if (live && state) {
      live.addEventListener("htmx:sseOpen", function () {
        state.textContent = state.dataset.live; state.classList.remove("down");
        // catch up: whatever changed while the stream was down (or before it opened)
        htmx.trigger("#board", "refresh");
      });
      live.addEventListener("htmx:sseError", function () {
        state.textContent = state.dataset.offline; state.classList.add("down");
      });
    }
    var watch = document.getElementById("alert-watch");
    var article = document.getElementById("alert");
    if (watch && article) {
      watch.addEventListener("htmx:sseMessage", function (evt) {
        var data = {};
        try { data = JSON.parse(evt.detail.data); } catch (e) { return; }
        if (data.id === article.dataset.alert && data.kind !== "repeated") {
          document.getElementById("changed").hidden = false;
        }
      });
    }
    var menu = document.querySelector(".top .pages");
    var more = document.querySelector(".top .more");
    if (menu && more) {
      // a phone's one-row menu: say there is more to the right until its end is in view
      var mark = function () { more.hidden = menu.scrollLeft + menu.clientWidth >= menu.scrollWidth - 4; };
      var current = menu.querySelector("[aria-current=page]");
      if (current && current.offsetLeft + current.offsetWidth > menu.clientWidth) {
        menu.scrollLeft = current.offsetLeft - 16; // the page you are on is in view
      }
      menu.addEventListener("scroll", mark, { passive: true });
      window.addEventListener("resize", mark);
      more.addEventListener("click", function () { menu.scrollBy({ left: menu.clientWidth * 0.7, behavior: "smooth" }); });
      mark();
    }
    document.body.addEventListener("htmx:afterSwap", check);
    document.body.addEventListener("ce:swapped", check); // buildings.js swapped a building in
    check();
  });
})();
