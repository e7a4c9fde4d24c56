/* Finder Inbox team features: the bell's badge and browser notifications, the notification
   preferences page's browser settings, and the composer's @mention suggestions in notes.
   The bell works without this file as a list; this makes it live. */
(function () {
  "use strict";

  var IN_FRONT_KEY = "finder.team.notifyInFront";

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $$(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  function csrfToken() {
    var headers = document.body.getAttribute("hx-headers");
    try { return JSON.parse(headers)["x-csrftoken"]; } catch (error) { return ""; }
  }

  /* --- the bell ------------------------------------------------------------------------- */
  var latest = null;   // the newest notification id this tab knows; null until the first poll
  var polling = false;
  var sound = null;

  function bell() { return document.getElementById("team-bell"); }

  function setBadge(text) {
    var badge = $("[data-bell-badge]", bell());
    if (!badge) { return; }
    badge.textContent = text;
    badge.hidden = !text;
  }

  function poll() {
    var root = bell();
    if (!root || polling) { return; }
    polling = true;
    var url = root.dataset.pollUrl + (latest === null ? "" : "?after=" + latest);
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status); }
        return response.json();
      })
      .then(function (data) {
        setBadge(data.badge);
        // The first answer only sets where this tab starts: older news is in the bell already.
        if (latest !== null) { data["new"].forEach(announce); }
        latest = data.latest;
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () { polling = false; });
  }

  function announce(item) {
    if (item.sound) { playSound(); }
    if (!item.browser || !("Notification" in window) || Notification.permission !== "granted") { return; }
    if (!document.hidden && localStorage.getItem(IN_FRONT_KEY) !== "1") { return; }
    var shown = new Notification(item.title, { body: item.body, tag: "finder-" + item.id });
    shown.onclick = function () {
      window.focus();
      openNotification(item.id);
      shown.close();
    };
  }

  function playSound() {
    var root = bell() || $("[data-browser-settings]");
    if (!root) { return; }
    sound = sound || new Audio(root.dataset.soundUrl);
    sound.currentTime = 0;
    // A browser that has not seen a click on the page yet refuses to play: nothing to do.
    sound.play().catch(function () {});
  }

  // Opening a notification reads it (a POST, as the bell's list does) and answers with the
  // conversation.
  function openNotification(id) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = bell().dataset.openUrl;
    [["csrfmiddlewaretoken", csrfToken()], ["notification", String(id)]].forEach(function (pair) {
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = pair[0];
      input.value = pair[1];
      form.appendChild(input);
    });
    document.body.appendChild(form);
    form.submit();
  }

  // inbox.js triggers "poll" on every [data-poll] element at its pace (3 s, 30 s when hidden);
  // a live event (inbox/live) asks at once.
  document.addEventListener("poll", function (event) {
    if (event.target && event.target.id === "team-bell-poller") { poll(); }
  });
  document.addEventListener("live:notification", poll);

  // The dropdown's list carries the unread count: once it has loaded (opened, or after "Mark
  // all read"), the badge says the same.
  document.addEventListener("htmx:afterSettle", function () {
    var list = $("#team-bell .bell-list");
    if (list && !list.dataset.counted) {
      var unread = parseInt(list.dataset.unread || "0", 10);
      setBadge(unread > 99 ? "99+" : unread ? String(unread) : "");
      list.dataset.counted = "1";
    }
  });

  /* --- the preferences page: this browser's permission, sound and "in front" -------------- */
  function showPermission(box) {
    var state = $("[data-permission-state]", box);
    var button = $("[data-enable-notifications]", box);
    if (!("Notification" in window)) {
      state.textContent = box.dataset.stateUnsupported;
      button.hidden = true;
      return;
    }
    state.textContent = box.dataset["state" + Notification.permission.charAt(0).toUpperCase() + Notification.permission.slice(1)];
    button.hidden = Notification.permission !== "default";
  }

  document.addEventListener("click", function (event) {
    var box = event.target.closest && event.target.closest("[data-browser-settings]");
    if (!box) { return; }
    if (event.target.closest("[data-enable-notifications]")) {
      // Asked only now, on the agent's click, never on page load.
      Notification.requestPermission().then(function () { showPermission(box); });
    } else if (event.target.closest("[data-test-sound]")) {
      playSound();
    }
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-notify-in-front]")) {
      localStorage.setItem(IN_FRONT_KEY, event.target.checked ? "1" : "0");
    }
  });

  /* --- @mentions in notes ----------------------------------------------------------------
     Typing "@" in a note opens a list of the account's members under the text box; arrows
     move, Enter or Tab inserts "@username ", Esc closes. Registered in the capture phase so
     that Enter chooses a member instead of sending the note (inbox.js sends on Enter). */
  var NAME = /[A-Za-z0-9_.+\-]/;
  var memberCache = {};

  function composerOf(el) { return el && el.closest ? el.closest("[data-composer]") : null; }
  function isNote(form) {
    var checked = form.querySelector("input[name=kind]:checked");
    return checked && checked.value === "note";
  }

  // The "@query" the caret is in, or null.
  function mentionAt(text) {
    if (text.selectionStart !== text.selectionEnd) { return null; }
    var caret = text.selectionStart;
    var start = caret;
    while (start > 0 && NAME.test(text.value.charAt(start - 1))) { start--; }
    if (start === 0 || text.value.charAt(start - 1) !== "@") { return null; }
    var at = start - 1;
    if (at > 0 && NAME.test(text.value.charAt(at - 1))) { return null; }  // an e-mail address
    return { at: at, query: text.value.slice(start, caret) };
  }

  function menuOf(form) {
    var menu = form.querySelector(".mention-menu");
    if (!menu) {
      menu = document.createElement("div");
      menu.className = "mention-menu";
      menu.id = form.id + "-mentions";
      menu.setAttribute("role", "listbox");
      menu.hidden = true;
      form.querySelector(".composer-box").appendChild(menu);
    }
    return menu;
  }

  function loadMembers(form, query) {
    var url = form.dataset.mentionUrl + "?q=" + encodeURIComponent(query);
    if (!memberCache[url]) {
      memberCache[url] = fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (!response.ok) { throw new Error(response.status); }
          return response.json();
        })
        .then(function (data) { return data.members; })
        .catch(function () { delete memberCache[url]; return []; });
    }
    return memberCache[url];
  }

  function updateMentions(form) {
    var text = form.querySelector("textarea[name=text]");
    var found = isNote(form) && form.dataset.mentionUrl ? mentionAt(text) : null;
    if (!found) { closeMentions(form); return; }
    narrowMentions(form, found.query);
    loadMembers(form, found.query).then(function (members) {
      var now = mentionAt(text);
      if (!now || now.query !== found.query) { return; }
      var menu = menuOf(form);
      menu.textContent = "";
      if (!members.length) { closeMentions(form); return; }
      members.forEach(function (member, index) {
        var option = document.createElement("div");
        option.className = "mention-option";
        option.id = menu.id + "-" + index;
        option.setAttribute("role", "option");
        option.dataset.username = member.username;
        option.dataset.match = (member.username + " " + member.name).toLowerCase();
        var name = document.createElement("span");
        name.className = "mention-name";
        name.textContent = member.name;
        var username = document.createElement("span");
        username.className = "mention-username";
        username.textContent = "@" + member.username;
        option.appendChild(name);
        option.appendChild(username);
        menu.appendChild(option);
      });
      menu.hidden = false;
      activate(form, 0);
    });
  }

  // While the server is asked about the longer name typed, the list already shown keeps only
  // who still matches, so Enter never picks someone the text no longer names.
  function narrowMentions(form, query) {
    if (!mentionsOpen(form)) { return; }
    var needle = query.toLowerCase();
    options(form).forEach(function (option) {
      if (option.dataset.match.indexOf(needle) < 0) { option.remove(); }
    });
    if (!options(form).length) { closeMentions(form); } else if (active(form) < 0) { activate(form, 0); }
  }

  function options(form) { return $$(".mention-option", menuOf(form)); }
  function active(form) {
    return options(form).findIndex(function (option) { return option.getAttribute("aria-selected") === "true"; });
  }
  function activate(form, index) {
    var all = options(form);
    if (!all.length) { return; }
    index = (index + all.length) % all.length;
    all.forEach(function (option, i) { option.setAttribute("aria-selected", i === index ? "true" : "false"); });
    all[index].scrollIntoView({ block: "nearest" });
    form.querySelector("textarea[name=text]").setAttribute("aria-activedescendant", all[index].id);
  }

  function choose(form, option) {
    var text = form.querySelector("textarea[name=text]");
    var found = mentionAt(text);
    if (!found) { closeMentions(form); return; }
    var insert = "@" + option.dataset.username + " ";
    text.value = text.value.slice(0, found.at) + insert + text.value.slice(text.selectionStart);
    text.selectionStart = text.selectionEnd = found.at + insert.length;
    closeMentions(form);
    text.dispatchEvent(new Event("input", { bubbles: true }));
    text.focus();
  }

  function closeMentions(form) {
    var menu = form.querySelector(".mention-menu");
    if (menu && !menu.hidden) {
      menu.hidden = true;
      menu.textContent = "";
      form.querySelector("textarea[name=text]").removeAttribute("aria-activedescendant");
    }
  }

  function mentionsOpen(form) {
    var menu = form.querySelector(".mention-menu");
    return menu && !menu.hidden;
  }

  document.addEventListener("input", function (event) {
    var form = composerOf(event.target);
    if (form && event.target.name === "text") { updateMentions(form); }
  });
  document.addEventListener("keydown", function (event) {
    var form = composerOf(event.target);
    if (!form || event.target.name !== "text" || !mentionsOpen(form)) { return; }
    if (event.isComposing || event.keyCode === 229) { return; }
    if (event.key === "ArrowDown") { activate(form, active(form) + 1); }
    else if (event.key === "ArrowUp") { activate(form, active(form) - 1); }
    else if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey) {
      var index = active(form);
      if (index >= 0) { choose(form, options(form)[index]); } else { closeMentions(form); }
    } else if (event.key === "Escape") { closeMentions(form); }
    else { return; }
    event.preventDefault();
    event.stopImmediatePropagation();
  }, true);
  document.addEventListener("mousedown", function (event) {
    var option = event.target.closest && event.target.closest(".mention-option");
    if (option) {
      event.preventDefault();  // keep the caret in the text box
      choose(composerOf(option), option);
    }
  });
  document.addEventListener("focusout", function (event) {
    var form = composerOf(event.target);
    if (form && event.target.name === "text") { closeMentions(form); }
  });
  document.addEventListener("change", function (event) {
    var form = composerOf(event.target);
    if (form && event.target.name === "kind") { closeMentions(form); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    poll();
    var box = $("[data-browser-settings]");
    if (box) {
      showPermission(box);
      $("[data-notify-in-front]", box).checked = localStorage.getItem(IN_FRONT_KEY) === "1";
    }
  });
})();
