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
                     if the thread shows its newest messages (else, as replace-only)
       own           what the user just wrote: appended, and the thread scrolled to it (a thread
                     opened further back jumps to its newest page first)
       replace-only  rows on the page are replaced; the others are dropped
       move          rows on the page are removed first, then all inserted (session list top) */
  function atTail() { return !document.getElementById("load-newer"); }

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    if (keepHeaderControls(event)) { return; }
    var fragment = event.detail.fragment;
    var mode = fragment && fragment.dataset ? fragment.dataset.upsert : null;
    if (!mode) { return; }
    var box = scroller();
    if (mode === "own" && !atTail()) {
      event.detail.shouldSwap = false;
      showNewest();
      return;
    }
    if (mode === "append" && !atTail()) { mode = "replace-only"; }
    var stick = box && box.contains(event.detail.target) && (mode === "own" || nearBottom(box));
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

  function showNewest() {
    var thread = document.getElementById("thread");
    if (!thread || !thread.dataset.url) { return; }
    htmx.ajax("GET", thread.dataset.url, { target: "#thread", swap: "outerHTML" }).then(function () {
      history.replaceState(history.state, "", thread.dataset.url);
    });
  }

  /* The thread poll re-renders the header when the session changes (someone else resolved it, a
     letter reopened it). While this user has a menu open or a control focused there, only the
     title part is refreshed, so the control does not vanish under the pointer. */
  function keepHeaderControls(event) {
    var live = event.detail.target;
    if (!live || !/^thread-header-/.test(live.id)) { return false; }
    var actions = live.querySelector(".thread-actions");
    var busy = actions && (actions.querySelector("details[open]") ||
      (actions.contains(document.activeElement) && /^(SELECT|INPUT)$/.test(document.activeElement.tagName)));
    var fresh = event.detail.fragment && event.detail.fragment.querySelector(".thread-title");
    if (!busy || !fresh) { return false; }
    live.querySelector(".thread-title").replaceWith(fresh);
    event.detail.shouldSwap = false;
    return true;
  }

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
    prepareComposers(document);
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

  /* --- the composer: Enter sends, Shift+Enter breaks the line, "/" offers saved replies --- */
  function composerOf(el) { return el && el.closest ? el.closest("[data-composer]") : null; }
  function composerText(form) { return form.querySelector("textarea[name=text]"); }
  function composerKind(form) {
    var checked = form.querySelector("input[name=kind]:checked");
    return checked ? checked.value : "reply";
  }

  function fitComposer(form) {
    var text = composerText(form);
    text.style.height = "auto";
    text.style.height = text.scrollHeight + 2 + "px";
    var max = parseInt(text.dataset[composerKind(form) === "note" ? "maxNote" : "maxReply"], 10);
    var counter = form.querySelector(".composer-count");
    var length = text.value.trim().length;
    if (counter) {
      // Quiet until the limit is near; then the count, red once over.
      counter.textContent = length > max * 0.8 ? length + " / " + max : "";
      counter.classList.toggle("is-over", length > max);
    }
  }

  function setComposerMode(form) {
    var note = composerKind(form) === "note";
    var text = composerText(form);
    form.classList.toggle("is-note", note);
    text.placeholder = note ? text.dataset.placeholderNote : text.dataset.placeholderReply;
    // An error about the other kind of message no longer applies.
    $$(".composer-error .form-error", form).forEach(function (error) { error.remove(); });
    text.removeAttribute("aria-invalid");
    closeCanned(form);
    fitComposer(form);
    text.focus();
  }

  var cannedCache = {};

  function cannedMenu(form) { return form.querySelector(".canned-menu"); }

  function loadCanned(form) {
    var url = form.dataset.cannedUrl;
    if (!cannedCache[url]) {
      cannedCache[url] = fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error(response.status); }
          return response.json();
        })
        .then(function (data) { return data.replies; })
        .catch(function () { delete cannedCache[url]; return []; });
    }
    return cannedCache[url];
  }

  // The text after a leading "/" on the first line, up to the caret; null when not in one.
  function cannedQuery(text) {
    var value = text.value;
    if (value.charAt(0) !== "/" || text.selectionStart !== text.selectionEnd) { return null; }
    var before = value.slice(1, text.selectionStart);
    return before.indexOf("\n") >= 0 ? null : before;
  }

  function updateCanned(form) {
    var text = composerText(form);
    var menu = cannedMenu(form);
    var query = cannedQuery(text);
    if (query === null || form.dataset.cannedDismissed === text.value.split("\n")[0]) {
      closeCanned(form);
      return;
    }
    delete form.dataset.cannedDismissed;
    if (menu.hidden) {
      menu.hidden = false;
      menu.textContent = menu.dataset.loading;
      text.setAttribute("aria-expanded", "true");
    }
    loadCanned(form).then(function (replies) {
      if (menu.hidden || cannedQuery(text) !== query) { return; }
      var needle = query.toLowerCase();
      var found = replies.filter(function (reply) {
        return !needle || reply.title.toLowerCase().indexOf(needle) >= 0 || reply.text.toLowerCase().indexOf(needle) >= 0;
      });
      menu.textContent = "";
      if (!found.length) {
        var empty = document.createElement("p");
        empty.className = "canned-empty";
        empty.textContent = replies.length ? menu.dataset.empty : menu.dataset.none;
        menu.appendChild(empty);
        text.removeAttribute("aria-activedescendant");
        return;
      }
      found.forEach(function (reply, index) {
        var option = document.createElement("div");
        option.className = "canned-option";
        option.id = menu.id + "-option-" + index;
        option.setAttribute("role", "option");
        option.dataset.text = reply.text;
        var title = document.createElement("span");
        title.className = "canned-title";
        title.textContent = reply.title;
        var body = document.createElement("span");
        body.className = "canned-text";
        body.textContent = reply.text;
        option.appendChild(title);
        option.appendChild(body);
        menu.appendChild(option);
      });
      activateCanned(form, 0);
    });
  }

  function cannedOptions(form) { return $$(".canned-option", cannedMenu(form)); }

  function activateCanned(form, index) {
    var options = cannedOptions(form);
    if (!options.length) { return; }
    index = (index + options.length) % options.length;
    options.forEach(function (option, i) { option.setAttribute("aria-selected", i === index ? "true" : "false"); });
    options[index].scrollIntoView({ block: "nearest" });
    composerText(form).setAttribute("aria-activedescendant", options[index].id);
  }

  function activeCanned(form) {
    var options = cannedOptions(form);
    for (var i = 0; i < options.length; i++) {
      if (options[i].getAttribute("aria-selected") === "true") { return i; }
    }
    return -1;
  }

  function chooseCanned(form, option) {
    var text = composerText(form);
    // The "/query" typed so far gives way to the saved reply; anything after the caret stays.
    text.value = option.dataset.text + text.value.slice(text.selectionStart);
    text.selectionStart = text.selectionEnd = option.dataset.text.length;
    closeCanned(form);
    fitComposer(form);
    text.focus();
  }

  function closeCanned(form) {
    var menu = cannedMenu(form);
    var text = composerText(form);
    if (!menu || menu.hidden) { return; }
    menu.hidden = true;
    menu.textContent = "";
    text.setAttribute("aria-expanded", "false");
    text.removeAttribute("aria-activedescendant");
  }

  document.addEventListener("input", function (event) {
    var form = composerOf(event.target);
    if (!form || event.target.name !== "text") { return; }
    fitComposer(form);
    updateCanned(form);
  });
  document.addEventListener("change", function (event) {
    var form = composerOf(event.target);
    if (form && event.target.name === "kind") { setComposerMode(form); }
  });
  document.addEventListener("mousedown", function (event) {
    var option = event.target.closest && event.target.closest(".canned-option");
    if (option) {
      event.preventDefault();  // keep the focus (and the caret) in the text box
      chooseCanned(composerOf(option), option);
    }
  });
  document.addEventListener("focusout", function (event) {
    var form = composerOf(event.target);
    if (form && event.target.name === "text") { closeCanned(form); }
  });

  document.addEventListener("keydown", function (event) {
    var form = composerOf(event.target);
    if (!form || event.target.name !== "text") { return; }
    // Enter that confirms a Chinese input method's candidate is not a send.
    if (event.isComposing || event.keyCode === 229) { return; }
    var menu = cannedMenu(form);
    var open = menu && !menu.hidden;
    var handled = true;
    if (open && event.key === "ArrowDown") {
      activateCanned(form, activeCanned(form) + 1);
    } else if (open && event.key === "ArrowUp") {
      activateCanned(form, activeCanned(form) - 1);
    } else if (open && (event.key === "Enter" || event.key === "Tab") && !event.shiftKey) {
      var index = activeCanned(form);
      if (index >= 0) { chooseCanned(form, cannedOptions(form)[index]); } else { closeCanned(form); }
    } else if (open && event.key === "Escape") {
      form.dataset.cannedDismissed = event.target.value.split("\n")[0];
      closeCanned(form);
    } else if (event.key === "Enter" && !event.shiftKey && !event.ctrlKey && !event.altKey && !event.metaKey) {
      form.requestSubmit();
    } else {
      handled = false;
    }
    if (handled) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  });

  function prepareComposers(root) {
    $$("[data-composer]", root).forEach(function (form) {
      var text = composerText(form);
      text.setAttribute("role", "combobox");
      text.setAttribute("aria-autocomplete", "list");
      text.setAttribute("aria-controls", cannedMenu(form).id);
      text.setAttribute("aria-expanded", "false");
      fitComposer(form);
    });
  }

  /* An upload the server refused by its size (413, answered before the body was read): htmx
     swaps nothing for it, so its plain-text reason goes where the composer's errors go. */
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var footer = event.detail.elt.closest && event.detail.elt.closest("#thread-footer");
    var box = footer && footer.querySelector(".composer-error");
    if (!xhr || xhr.status !== 413 || !box) { return; }
    var error = document.createElement("p");
    error.className = "form-error";
    error.textContent = xhr.responseText;
    box.replaceChildren(error);
    // The same file chosen again must fire "change" again.
    $$("input[type=file]", footer).forEach(function (input) { input.value = ""; });
  });

  /* --- menus (<details class="menu">): one open at a time, closed by a click outside or Esc --- */
  function closeMenus(except) {
    $$("details.menu[open]").forEach(function (menu) { if (menu !== except) { menu.open = false; } });
  }
  document.addEventListener("click", function (event) {
    closeMenus(event.target.closest ? event.target.closest("details.menu") : null);
  });
  document.addEventListener("keydown", function (event) {
    var menu = event.key === "Escape" && event.target.closest && event.target.closest("details.menu[open]");
    if (menu) {
      menu.open = false;
      menu.querySelector("summary").focus();
      event.stopImmediatePropagation();
    }
  });

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
    if (event.target.matches("[data-submit-on-change]") && event.target.form) {
      event.target.form.requestSubmit();
      return;
    }
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
    prepareComposers(document);
    openThread();
    refresh();
    schedule();
    setInterval(refreshTimes, 30000);
  });
})();
