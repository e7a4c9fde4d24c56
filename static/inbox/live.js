/* Finder Inbox, live team features (inbox/live): this tab's heartbeat (presence, and who else has
   the open conversation or is typing in it), the availability switch's dot, the composer's
   "seen up to" marker, and one server-sent events connection per tab.

   Events arrive as DOM events on document: `live:<event>` with the event's data as `detail`.
   They only make news faster: the polls of inbox.js keep running whether or not the events
   connection works, so a tab without it (under WSGI, behind a proxy that buffers, a broken
   network) still sees everything, within a poll. */
(function () {
  "use strict";

  var VIEWING = 2000;   // a visible tab with a conversation open beats this often
  var IDLE = 15000;     // any other tab (the server counts it open for 45 s)
  var TYPING = 3000;    // typing lasts this long after the last keystroke
  var SSE_GIVE_UP = 5;  // failed connections in a row before the tab settles for polling

  var timer = null;
  var active = true;       // the person did something since the last heartbeat
  var typingUntil = 0;
  var sentTyping = false;
  var stopped = false;
  var inFlight = false;
  var again = false;

  function live() { return document.getElementById("live"); }

  function tabId() {
    var id = null;
    try { id = sessionStorage.getItem("finder-live-tab"); } catch (e) { /* storage off */ }
    if (!id) {
      var bytes = new Uint8Array(12);
      crypto.getRandomValues(bytes);
      id = Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
      try { sessionStorage.setItem("finder-live-tab", id); } catch (e) { /* one id per page then */ }
    }
    return id;
  }
  var TAB = tabId();

  // The open conversation's line in the header, when this tab is being looked at.
  function threadLine() {
    if (document.hidden) { return null; }
    return document.querySelector("#thread .live-viewers[data-live-thread]");
  }

  function typingNow() { return Date.now() < typingUntil; }

  function schedule(delay) {
    clearTimeout(timer);
    if (stopped) { return; }
    timer = setTimeout(beat, delay);
  }

  function beat() {
    var root = live();
    if (!root || stopped) { return; }
    if (inFlight) { again = true; return; }
    var line = threadLine();
    var holder = line || root;
    var body = new URLSearchParams();
    body.set("token", line ? line.dataset.liveThread : root.dataset.token);
    body.set("tab", TAB);
    if (active) { body.set("active", "1"); }
    var typing = !!line && typingNow();
    if (typing) { body.set("typing", "1"); }
    active = false;
    sentTyping = typing;
    inFlight = true;
    fetch(root.dataset.heartbeatUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": root.dataset.csrf, "Content-Type": "application/x-www-form-urlencoded" },
      body: body
    }).then(function (response) {
      var renewed = response.headers.get("X-Live-Token");
      if (renewed) {
        if (holder === root) { root.dataset.token = renewed; } else { holder.dataset.liveThread = renewed; }
      }
      if (response.status === 403) { stopped = true; return null; }  // signed out: inbox.js reloads
      return response.status === 200 ? response.text() : null;
    }).then(function (html) {
      // The server escaped the names; the line is its answer as it stands.
      if (html !== null && line && document.body.contains(line)) { line.innerHTML = html; }
    }).catch(function () { /* the next beat tries again */ }).then(function () {
      inFlight = false;
      if (again) { again = false; beat(); return; }
      schedule(threadLine() ? VIEWING : IDLE);
    });
  }

  /* --- activity and typing ------------------------------------------------------------- */
  ["keydown", "pointerdown", "wheel", "touchstart"].forEach(function (name) {
    document.addEventListener(name, function () { active = true; }, { passive: true, capture: true });
  });
  document.addEventListener("input", function (event) {
    if (!event.target.closest || !event.target.closest("[data-composer]") || event.target.name !== "text") { return; }
    var wasTyping = typingNow();
    typingUntil = Date.now() + TYPING;
    if (!wasTyping && !sentTyping) { beat(); }  // the others see it start now, not in 2 s
    setTimeout(function () { if (!typingNow() && sentTyping) { beat(); } }, TYPING + 50);
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) { active = true; }
    beat();
  });

  /* --- the composer's "seen up to": the newest message on screen ------------------------ */
  document.addEventListener("htmx:configRequest", function (event) {
    var form = event.detail.elt;
    if (!form.matches || !form.matches("[data-composer]")) { return; }
    var newest = parseInt(event.detail.parameters.seen_up_to || "0", 10) || 0;
    document.querySelectorAll("#thread .messages [id^='message-']").forEach(function (el) {
      var id = parseInt(el.id.slice(8), 10);
      if (id > newest) { newest = id; }
    });
    if (newest) { event.detail.parameters.seen_up_to = String(newest); }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (form.matches && form.matches("[data-composer]") && event.detail.successful) {
      typingUntil = 0;
      beat();
    }
  });

  /* --- a new conversation on screen: say so now ---------------------------------------- */
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target && event.detail.target.id === "thread") { beat(); }
  });

  /* --- the availability switch's dot follows the choice -------------------------------- */
  document.addEventListener("change", function (event) {
    if (event.target.id !== "live-status") { return; }
    var dot = document.querySelector("#live-switch .availability-dot");
    if (dot) { dot.dataset.availability = event.target.value; }
  });

  /* --- leaving: the tab stops counting at once ----------------------------------------- */
  window.addEventListener("pagehide", function () {
    var root = live();
    if (!root || !navigator.sendBeacon) { return; }
    var line = document.querySelector("#thread .live-viewers[data-live-thread]");
    var data = new FormData();
    data.set("token", line ? line.dataset.liveThread : root.dataset.token);
    data.set("tab", TAB);
    data.set("csrfmiddlewaretoken", root.dataset.csrf);
    navigator.sendBeacon(root.dataset.closeUrl, data);
  });

  /* --- server-sent events: one connection per tab -------------------------------------- */
  function pollNow() {
    if (!window.htmx) { return; }
    document.querySelectorAll("[data-poll]").forEach(function (el) { htmx.trigger(el, "poll"); });
  }

  function connect() {
    var root = live();
    if (!root || !root.dataset.eventsUrl || !window.EventSource) { return; }
    var failures = 0;
    var source = new EventSource(root.dataset.eventsUrl);
    source.addEventListener("open", function () { failures = 0; });
    source.addEventListener("message", function (message) {
      var parsed;
      try { parsed = JSON.parse(message.data); } catch (e) { return; }
      document.dispatchEvent(new CustomEvent("live:" + parsed.event, { detail: parsed.data }));
    });
    source.addEventListener("error", function () {
      // Closed for good (204 under WSGI, 403 signed out) or failing again and again: polling
      // alone carries on. Otherwise EventSource reconnects by itself.
      failures += 1;
      if (source.readyState === EventSource.CLOSED || failures >= SSE_GIVE_UP) { source.close(); }
    });
  }

  // News for this user (a new conversation, one assigned to them: inbox.team's notifications):
  // the list and the open thread ask now rather than at their next tick.
  document.addEventListener("live:notification", pollNow);
  // Someone arrived in, or started or stopped typing in, the conversation on screen.
  document.addEventListener("live:viewers", function (event) {
    var line = threadLine();
    if (line && event.detail && String(event.detail.session) === line.dataset.session) { beat(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    if (!live()) { return; }
    beat();
    connect();
  });
})();
