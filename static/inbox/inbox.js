/* Finder Inbox: the little the server cannot do. Polling (slower in a hidden tab), merging live
   rows into the page by id, keeping the thread's scroll position, the page title, relative times,
   and keyboard shortcuts. Every page works without this file; it only makes it live. */
(function () {
  "use strict";

  var FAST = 3000;   // a visible tab asks for news every 3 s
  var SLOW = 30000;  // a hidden one every 30 s
  var timer = null;

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $$(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function app() { return document.getElementById("app"); }
  function scroller() { return document.getElementById("thread-scroll"); }
  function messagesBox() { return $("#thread .messages"); }

  /* --- polling ------------------------------------------------------------------------- */
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(tick, document.hidden ? SLOW : FAST);
  }
  function tick() {
    if (window.htmx) {
      $$("[data-poll]").forEach(function (el) { htmx.trigger(el, "poll"); });
    }
    schedule();
  }
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { schedule(); } else { tick(); }
  });

  document.addEventListener("htmx:configRequest", function (event) {
    // An open thread in a tab someone is looking at counts as read.
    if (event.detail.elt.id === "thread-poller" && !document.hidden) {
      event.detail.parameters.seen = "1";
    }
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    // Signed out (session expired) while polling: show the sign-in page.
    var xhr = event.detail.xhr;
    var root = app();
    if (root && xhr && xhr.responseURL && event.detail.elt.hasAttribute("data-poll")) {
      var path = new URL(xhr.responseURL).pathname;
      if (path === root.dataset.loginUrl) { window.location.reload(); }
    }
  });

  /* --- merging live rows by id ----------------------------------------------------------
     A poll answer wraps rows in <div hx-swap-oob="beforeend:#target" data-upsert="mode">:
       append        rows already on the page are replaced where they are; new ones appended
       replace-only  rows on the page are replaced; the others are dropped
       move          rows on the page are removed first, then all inserted (session list top) */
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var fragment = event.detail.fragment;
    var mode = fragment && fragment.dataset ? fragment.dataset.upsert : null;
    if (!mode) { return; }
    var box = scroller();
    var stick = box && box.contains(event.detail.target) && nearBottom(box);
    Array.prototype.slice.call(fragment.children).forEach(function (row) {
      if (!row.id) { return; }
      var existing = document.getElementById(row.id);
      if (mode === "move") {
        if (existing) { existing.remove(); }
      } else if (existing) {
        existing.replaceWith(row);
        htmx.process(row);
      } else if (mode === "replace-only") {
        row.remove();
      }
    });
    // A day separator whose message was replaced in place (or dropped) has nothing to head.
    Array.prototype.slice.call(fragment.children).forEach(function (el) {
      if (!el.id && !(el.nextElementSibling && el.nextElementSibling.id)) { el.remove(); }
    });
    if (mode === "move") { $$(".empty-list", event.detail.target).forEach(function (el) { el.remove(); }); }
    setTimeout(function () {
      dedupeDaySeparators();
      refreshTimes();
      if (stick) { box.scrollTop = box.scrollHeight; }
    }, 0);
  });

  function nearBottom(box) { return box.scrollHeight - box.scrollTop - box.clientHeight < 120; }

  // Fragments bring a separator before their first message's day; one per day is enough.
  function dedupeDaySeparators() {
    var last = null;
    $$("#thread .day-sep").forEach(function (sep) {
      if (sep.dataset.day === last) { sep.remove(); } else { last = sep.dataset.day; }
    });
  }

  /* --- load older: keep what the reader sees in place ------------------------------------ */
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    var box = scroller();
    if (target && target.id === "load-older" && box) {
      var fromBottom = box.scrollHeight - box.scrollTop;
      setTimeout(function () {
        dedupeDaySeparators();
        box.scrollTop = box.scrollHeight - fromBottom;
      }, 0);
    }
  });

  /* --- after any swap ----------------------------------------------------------------- */
  function markActive() {
    var thread = document.getElementById("thread");
    var current = thread ? thread.dataset.session : null;
    $$(".session-row[aria-current]").forEach(function (row) { row.removeAttribute("aria-current"); });
    if (current) {
      var row = document.getElementById("session-" + current);
      if (row) { row.setAttribute("aria-current", "true"); }
    }
    var root = app();
    if (root) { root.dataset.pane = current ? "thread" : "list"; }
  }

  function updateTitle() {
    var counter = document.getElementById("unread-total");
    var thread = document.getElementById("thread");
    var base = thread && thread.dataset.title ? thread.dataset.title : document.title.replace(/^\(\d+\)\s*/, "");
    var count = counter ? parseInt(counter.dataset.count || "0", 10) : 0;
    var title = (count > 0 ? "(" + count + ") " : "") + base;
    if (document.title !== title) { document.title = title; }
  }

  function openThread() {
    var box = scroller();
    var messages = messagesBox();
    if (!box || !messages) { return; }
    dedupeDaySeparators();
    var focusId = messages.dataset.focus || (location.hash.indexOf("#message-") === 0 ? location.hash.slice(1) : "");
    var focus = focusId ? document.getElementById(focusId) : null;
    if (focus) {
      focus.scrollIntoView({ block: "center" });
      focus.classList.add("is-focused");
    } else {
      box.scrollTop = box.scrollHeight;
    }
  }

  function refresh() {
    markActive();
    updateTitle();
    refreshTimes();
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.target && event.detail.target.id === "thread") { openThread(); }
    refresh();
  });
  document.addEventListener("htmx:oobAfterSwap", refresh);
  document.addEventListener("htmx:historyRestore", function () { refresh(); openThread(); });

  /* --- relative times ("3 min ago") stay true while the page is open ---------------------- */
  function refreshTimes() {
    var body = document.body;
    var justNow = body.dataset.justNow;
    var minAgo = body.dataset.minAgo;
    if (!minAgo) { return; }
    var now = Date.now();
    $$("time[data-relative]").forEach(function (el) {
      var minutes = Math.floor((now - Date.parse(el.getAttribute("datetime"))) / 60000);
      if (minutes >= 60) {
        el.textContent = el.dataset.clock;
        el.removeAttribute("data-relative");
      } else {
        el.textContent = minutes <= 0 ? justNow : minAgo.replace("%(count)d", String(minutes));
      }
    });
  }

  /* --- keyboard ------------------------------------------------------------------------- */
  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }
  function step(delta) {
    var rows = $$("#session-list .session-row");
    if (!rows.length) { return; }
    var index = rows.findIndex(function (row) { return row.getAttribute("aria-current") === "true"; });
    var next = rows[Math.min(Math.max(index + delta, 0), rows.length - 1)];
    if (index < 0) { next = rows[0]; }
    if (next && next.getAttribute("aria-current") !== "true") {
      next.scrollIntoView({ block: "nearest" });
      next.click();
    }
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var root = app();
    if (!root) { return; }
    if (event.key === "Escape") {
      if (typing(event.target)) {
        event.target.blur();
      } else if (root.classList.contains("nav-open")) {
        root.classList.remove("nav-open");
      } else {
        var close = document.getElementById("thread-close");
        if (close) { window.location.href = close.href; }
      }
      return;
    }
    if (typing(event.target)) { return; }
    if (event.key === "j") { event.preventDefault(); step(1); }
    else if (event.key === "k") { event.preventDefault(); step(-1); }
    else if (event.key === "/") {
      var search = document.getElementById("search-input");
      if (search) { event.preventDefault(); search.focus(); search.select(); }
    }
  });

  /* --- small things --------------------------------------------------------------------- */
  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-autosubmit]")) {
      // Come back to the page as it is now (htmx may have moved on from the one first loaded).
      var next = event.target.form.querySelector("input[name=next]");
      if (next) { next.value = location.pathname + location.search; }
      event.target.form.submit();
    }
  });
  document.addEventListener("click", function (event) {
    var root = app();
    if (!root) { return; }
    if (event.target.closest("[data-nav-toggle]")) {
      root.classList.toggle("nav-open");
    } else if (root.classList.contains("nav-open") && !event.target.closest("#nav")) {
      root.classList.remove("nav-open");
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    openThread();
    refresh();
    schedule();
    setInterval(refreshTimes, 30000);
  });
})();
