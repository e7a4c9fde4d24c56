/* Finder Inbox: the viewer profile panel beside the thread.
   - Open or closed is remembered in localStorage and kept on <html data-viewer-panel>, so a
     thread swapped in later shows the panel as the user left it (CSS does the showing; the panel
     loads its profile with hx-trigger="intersect once", so a closed panel asks for nothing).
   - On a phone the panel is a bottom sheet (<html data-viewer-sheet="open">), closed by default
     and after following one of the viewer's other conversations.
   - The copy button puts the viewer's user name on the clipboard. */
(function () {
  "use strict";

  var KEY = "finder.viewerPanel";
  var root = document.documentElement;
  var phone = window.matchMedia("(max-width: 760px)");

  /* Until the user chooses, open only where the thread keeps its room beside it. */
  function stored() {
    var fallback = window.matchMedia("(min-width: 1440px)").matches ? "open" : "closed";
    try { return window.localStorage.getItem(KEY) || fallback; } catch (e) { return fallback; }
  }

  function store(state) {
    try { window.localStorage.setItem(KEY, state); } catch (e) { /* private mode: not kept */ }
  }

  function isOpen() {
    return phone.matches ? root.dataset.viewerSheet === "open" : root.dataset.viewerPanel === "open";
  }

  function syncToggles() {
    var open = String(isOpen());
    Array.prototype.forEach.call(document.querySelectorAll("[data-viewer-panel-toggle]"), function (button) {
      button.setAttribute("aria-expanded", open);
    });
  }

  function setOpen(open) {
    if (phone.matches) {
      root.dataset.viewerSheet = open ? "open" : "closed";
    } else {
      root.dataset.viewerPanel = open ? "open" : "closed";
      store(root.dataset.viewerPanel);
    }
    syncToggles();
  }

  root.dataset.viewerPanel = stored();
  root.dataset.viewerSheet = "closed";

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target : null;
    if (!target) { return; }
    if (target.closest("[data-viewer-panel-toggle]")) {
      setOpen(!isOpen());
      return;
    }
    if (target.closest("[data-viewer-panel-close]")) {
      setOpen(false);
      return;
    }
    if (target.closest("[data-viewer-follow]") && phone.matches) {
      setOpen(false);  // the sheet would cover the conversation it opens
      return;
    }
    var copy = target.closest("[data-copy]");
    if (copy) { copyText(copy); }
  });

  function copyText(button) {
    var text = button.dataset.copy;
    var label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    function say(words) {
      button.textContent = words;
      window.setTimeout(function () { button.textContent = label; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { say(button.dataset.copied); },
        function () { selectFallback(button, say); }
      );
    } else {
      selectFallback(button, say);
    }
  }

  /* Without the clipboard API (plain http on another host): select the name for Ctrl+C. */
  function selectFallback(button, say) {
    var code = document.getElementById(button.getAttribute("aria-describedby"));
    if (code) {
      var range = document.createRange();
      range.selectNodeContents(code);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    }
    say(button.dataset.copyFailed);
  }

  phone.addEventListener("change", syncToggles);
  document.addEventListener("htmx:load", syncToggles);
  syncToggles();
})();
