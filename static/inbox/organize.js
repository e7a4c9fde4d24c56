/* Finder Inbox: selecting conversations in the list for a bulk action. Each row has a checkbox
   (part of the bulk bar's form through its form="" attribute, so a post carries the selection);
   this keeps the selection across the list's live updates (a poll swaps rows for fresh ones),
   selects ranges with Shift (click, or Shift+Space on a checkbox), "select all on this page",
   `x` for the open conversation's row, shows the bar while something is selected, and clears
   the selection once an action is done. The server's answer is the confirmation. */
(function () {
  "use strict";

  var selected = new Set();  // session ids, as strings
  var anchor = null;         // the id a Shift range starts from
  var rangeByKey = false;    // Shift+Space on a checkbox: its click is a range, like Shift+click

  function $$(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function bar() { return document.querySelector("[data-bulk-bar]"); }
  function picks() { return $$("#session-list .session-pick"); }
  function selectAll() { return document.querySelector("[data-select-all]"); }

  function render() {
    var form = bar();
    var all = selectAll();
    var boxes = picks();
    boxes.forEach(function (box) { box.checked = selected.has(box.value); });
    var shown = boxes.filter(function (box) { return box.checked; }).length;
    if (all) {
      all.disabled = boxes.length === 0;
      all.checked = boxes.length > 0 && shown === boxes.length;
      all.indeterminate = shown > 0 && shown < boxes.length;
    }
    if (!form) { return; }
    var was = !form.hidden;
    form.hidden = selected.size === 0;
    var count = form.querySelector("[data-bulk-count]");
    if (count) { count.textContent = form.dataset.countPattern.replace("%(count)s", String(selected.size)); }
    if (!was && !form.hidden && window.htmx) {
      // The assignee and label menus are fetched the first time the bar shows.
      var choices = document.getElementById("bulk-choices");
      if (choices) { htmx.trigger(choices, "bulk-open"); }
    }
  }

  function setRange(from, to, checked) {
    var boxes = picks();
    var ids = boxes.map(function (box) { return box.value; });
    var start = ids.indexOf(from);
    var end = ids.indexOf(to);
    if (start < 0 || end < 0) { return false; }
    if (start > end) { var swap = start; start = end; end = swap; }
    ids.slice(start, end + 1).forEach(function (id) {
      if (checked) { selected.add(id); } else { selected.delete(id); }
    });
    return true;
  }

  function clear() {
    selected.clear();
    anchor = null;
    render();
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target.matches && target.matches(".session-pick") && event.key === " " && event.shiftKey) {
      rangeByKey = true;
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.matches(".session-pick")) {
      var id = target.value;
      var ranged = (event.shiftKey || rangeByKey) && anchor !== null && anchor !== id;
      rangeByKey = false;
      if (!(ranged && setRange(anchor, id, target.checked))) {
        if (target.checked) { selected.add(id); } else { selected.delete(id); }
      }
      anchor = id;
      render();
      return;
    }
    if (target.matches("[data-select-all]")) {
      picks().forEach(function (box) {
        if (target.checked) { selected.add(box.value); } else { selected.delete(box.value); }
      });
      anchor = null;
      render();
      return;
    }
    if (target.closest("[data-bulk-clear]")) {
      clear();
      return;
    }
    // A click on the list item beside its checkbox (not on the link) opens the conversation.
    if (target.matches(".session-item")) {
      var link = target.querySelector(".session-row");
      if (link) { link.click(); }
    }
  });

  // `x` selects or unselects the open conversation's row (j/k move between them).
  document.addEventListener("keydown", function (event) {
    if (event.key !== "x" || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target;
    if (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) { return; }
    var current = document.querySelector("#session-list .session-row[aria-current='true']");
    var box = current && current.parentNode.querySelector(".session-pick");
    if (!box) { return; }
    event.preventDefault();
    box.click();
  });

  function isBulk(event) { return event.detail.elt && event.detail.elt.id === "bulk-form"; }

  document.addEventListener("htmx:afterRequest", function (event) {
    if (!isBulk(event) || !event.detail.successful) { return; }
    clear();
    bar().querySelectorAll("details[open]").forEach(function (menu) { menu.open = false; });
    // The sidebar's counts: the list's own poll brings them now rather than in 3 seconds.
    var poller = document.getElementById("sessions-poller");
    if (poller && window.htmx) { htmx.trigger(poller, "poll"); }
  });

  // A refusal htmx does not swap (404: a conversation that is not the user's): say it.
  document.addEventListener("htmx:responseError", function (event) {
    if (!isBulk(event)) { return; }
    var xhr = event.detail.xhr;
    if (xhr.status === 400) { return; }  // swapped into the status line already
    var status = document.getElementById("bulk-status");
    var message = document.createElement("p");
    message.className = "bulk-message is-error";
    var plain = /^text\/plain/.test(xhr.getResponseHeader("Content-Type") || "");
    message.textContent = plain && xhr.responseText ? xhr.responseText : bar().dataset.failed;
    status.replaceChildren(message);
  });

  // Saving a view: close its menu once saved, and empty the name for the next one.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (!form || form.id !== "save-view-form" || !event.detail.successful) { return; }
    form.reset();
    setTimeout(function () {
      var menu = document.getElementById("save-view-menu");
      if (menu) { menu.open = false; }
    }, 1500);
  });

  // A new list (another view, account or filter) starts with nothing selected; rows swapped in
  // by a poll or a load-more keep their checkbox's state.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    // A new list, or search results in its place: the rows selected are gone.
    if (target && (target.id === "list-pane" || target.id === "list-body")) { clear(); } else { render(); }
  });
  document.addEventListener("htmx:oobAfterSwap", render);
  document.addEventListener("htmx:historyRestore", clear);
  document.addEventListener("DOMContentLoaded", render);
})();
