/* Finder Inbox: the picture viewer. A click on an image card's picture opens it in a lightbox
   (templates/inbox/pictures/_lightbox.html, a modal <dialog>) at full size when that is stored,
   else as the preview with a "Load image" button; "Load image" on a card opens the lightbox as
   soon as the full-size picture has arrived. Inside: ← → for the thread's previous and next
   picture, + − 0 (or the wheel, or a click on the picture) to zoom, drag to move a zoomed
   picture, Esc to close; Tab stays inside. Without this file each picture is a plain link to
   itself. */
(function () {
  "use strict";

  var ZOOMS = [1, 1.5, 2, 3, 4, 6];  // 1 = the whole picture fits the window
  var DRAG_SLOP = 4;                 // pixels a press may move and still be a click

  var dialog = null;
  var current = null;    // the id of the card shown ("image-123")
  var zoom = 0;          // index into ZOOMS
  var opener = null;     // what had the focus before, to give it back
  var waitingFor = null; // the id of a card whose "Load image" should open the lightbox
  var drag = null;

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $$(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function part(name) { return $("[data-lightbox-" + name + "]", dialog); }

  // The thread's pictures in reading order: every card with a stored picture.
  function cards() { return $$("#thread .image-card[data-picture]"); }

  function open(card) {
    if (!dialog) { return; }
    if (!dialog.open) {
      opener = document.activeElement;
      dialog.showModal();
    }
    show(card);
    part("close").focus();
  }

  function close() {
    var shownCard = document.getElementById(current);
    dialog.close();
    part("image").removeAttribute("src");
    current = null;
    // Back to what was focused before; if htmx has replaced it meanwhile, to the picture shown.
    var back = opener && document.contains(opener) ? opener : shownCard && $("a.picture-open", shownCard);
    if (back && back.focus) { back.focus(); }
    opener = null;
  }

  function show(card) {
    var full = card.dataset.full;
    var source = full || card.dataset.picture;
    var image = part("image");
    current = card.id;
    if (image.getAttribute("src") !== source) {
      image.src = source;
      setZoom(0);
    }
    var thumbnail = $("img", card);
    if (thumbnail && thumbnail.alt) { image.alt = thumbnail.alt; }
    part("original").href = source;
    part("note").hidden = Boolean(full);
    var load = part("load");
    var form = loadForm(card);
    load.hidden = Boolean(full) || !form;
    load.disabled = waitingFor === card.id;
    var list = cards();
    var index = list.indexOf(card);
    part("count").textContent = dialog.dataset.countPattern
      .replace("%(index)s", String(index + 1)).replace("%(total)s", String(list.length));
    $("[data-lightbox-step='-1']", dialog).disabled = index <= 0;
    $("[data-lightbox-step='1']", dialog).disabled = index < 0 || index >= list.length - 1;
  }

  function step(delta) {
    var list = cards();
    var index = list.findIndex(function (card) { return card.id === current; });
    var next = list[index + delta];
    if (index >= 0 && next) {
      show(next);
      next.scrollIntoView({ block: "nearest" });
    }
  }

  function loadForm(card) { return $("form[hx-post]", card); }

  /* --- zoom: the picture's own size times ZOOMS[zoom], scrolled inside the stage ----------- */
  function setZoom(level, focusX, focusY) {
    var image = part("image");
    var stage = part("stage");
    level = Math.max(0, Math.min(ZOOMS.length - 1, level));
    var before = image.getBoundingClientRect();
    // The point of the picture under (focusX, focusY), as a fraction of its size.
    var fx = before.width ? ((focusX === undefined ? before.left + before.width / 2 : focusX) - before.left) / before.width : 0.5;
    var fy = before.height ? ((focusY === undefined ? before.top + before.height / 2 : focusY) - before.top) / before.height : 0.5;
    var fitted = fittedSize(image, stage);
    zoom = level;
    stage.classList.toggle("is-zoomed", level > 0 && Boolean(fitted));
    if (level === 0 || !fitted) {
      image.classList.remove("is-zoomed");
      image.style.width = "";
      image.style.height = "";
    } else {
      image.classList.add("is-zoomed");
      image.style.width = Math.round(fitted.width * ZOOMS[level]) + "px";
      image.style.height = Math.round(fitted.height * ZOOMS[level]) + "px";
      var after = image.getBoundingClientRect();
      var box = stage.getBoundingClientRect();
      var anchorX = focusX === undefined ? box.left + box.width / 2 : focusX;
      var anchorY = focusY === undefined ? box.top + box.height / 2 : focusY;
      stage.scrollLeft += after.left + fx * after.width - anchorX;
      stage.scrollTop += after.top + fy * after.height - anchorY;
    }
    $("[data-lightbox-zoom='-1']", dialog).disabled = level === 0;
    $("[data-lightbox-zoom='0']", dialog).disabled = level === 0;
    $("[data-lightbox-zoom='1']", dialog).disabled = level === ZOOMS.length - 1;
  }

  // The size the whole picture has when it fits the stage (never larger than itself).
  function fittedSize(image, stage) {
    var width = image.naturalWidth;
    var height = image.naturalHeight;
    if (!width || !height) { return null; }
    var scale = Math.min(1, stage.clientWidth / width, stage.clientHeight / height);
    return { width: width * scale, height: height * scale };
  }

  /* --- keyboard: captured before inbox.js's shortcuts (whose Esc would close the thread) -- */
  function focusable() {
    return $$("button, a[href]", dialog).filter(function (el) { return !el.hidden && !el.disabled; });
  }

  window.addEventListener("keydown", function (event) {
    if (!dialog || !dialog.open || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var handled = true;
    if (event.key === "Escape") { close(); }
    else if (event.key === "ArrowLeft") { step(-1); }
    else if (event.key === "ArrowRight") { step(1); }
    else if (event.key === "+" || event.key === "=") { setZoom(zoom + 1); }
    else if (event.key === "-" || event.key === "_") { setZoom(zoom - 1); }
    else if (event.key === "0") { setZoom(0); }
    else if (event.key === "Tab") {
      var items = focusable();
      var index = items.indexOf(document.activeElement);
      var next = event.shiftKey ? index - 1 : index + 1;
      items[(next + items.length) % items.length].focus();
    } else { handled = false; }
    if (handled) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  /* --- pointer ---------------------------------------------------------------------------- */
  document.addEventListener("click", function (event) {
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) { return; }
    var link = event.target.closest && event.target.closest(".image-card a.picture-open");
    if (link) {
      event.preventDefault();
      open(link.closest(".image-card"));
      return;
    }
    var button = event.target.closest && event.target.closest(".image-card form[hx-post] button");
    if (button) { waitingFor = button.closest(".image-card").id; }
  });

  function bind() {
    dialog = document.getElementById("lightbox");
    if (!dialog) { return; }
    part("close").addEventListener("click", close);
    $$("[data-lightbox-step]", dialog).forEach(function (button) {
      button.addEventListener("click", function () { step(parseInt(button.dataset.lightboxStep, 10)); });
    });
    $$("[data-lightbox-zoom]", dialog).forEach(function (button) {
      button.addEventListener("click", function () {
        var delta = parseInt(button.dataset.lightboxZoom, 10);
        setZoom(delta === 0 ? 0 : zoom + delta);
      });
    });
    part("load").addEventListener("click", function () {
      var card = document.getElementById(current);
      var form = card && loadForm(card);
      if (!form) { return; }
      waitingFor = card.id;
      part("load").disabled = true;
      form.requestSubmit();
    });
    // A native Esc "cancel" (the keydown handler normally gets there first) closes the same way.
    dialog.addEventListener("cancel", function (event) { event.preventDefault(); close(); });

    var stage = part("stage");
    stage.addEventListener("wheel", function (event) {
      event.preventDefault();
      setZoom(zoom + (event.deltaY < 0 ? 1 : -1), event.clientX, event.clientY);
    }, { passive: false });
    stage.addEventListener("pointerdown", function (event) {
      if (event.button !== 0) { return; }
      drag = { x: event.clientX, y: event.clientY, left: stage.scrollLeft, top: stage.scrollTop, moved: false };
      if (zoom > 0) { stage.setPointerCapture(event.pointerId); }
    });
    stage.addEventListener("pointermove", function (event) {
      if (!drag) { return; }
      var dx = event.clientX - drag.x;
      var dy = event.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > DRAG_SLOP) { drag.moved = true; }
      if (zoom > 0 && drag.moved) {
        stage.scrollLeft = drag.left - dx;
        stage.scrollTop = drag.top - dy;
      }
    });
    stage.addEventListener("pointerup", function (event) {
      var moved = drag && drag.moved;
      drag = null;
      if (moved) { return; }
      if (event.target === part("image")) {
        setZoom(zoom > 0 ? 0 : 2, event.clientX, event.clientY);
      } else if (event.target === stage) {
        close();  // a click on the dark around the picture
      }
    });
    part("image").addEventListener("load", function () { if (zoom > 0) { setZoom(zoom); } });

    // Cards are redrawn by htmx (the card's own poll, the thread's poll): follow them.
    new MutationObserver(followCards).observe(document.body, { childList: true, subtree: true });
  }

  function followCards() {
    if (waitingFor) {
      var card = document.getElementById(waitingFor);
      if (!card) {
        waitingFor = null;  // the thread was closed or paged away
      } else if (card.dataset.full) {
        waitingFor = null;
        if (!dialog.open) { open(card); return; }
        if (current === card.id) { show(card); }
      } else if ($(".image-error", card) && !$(".image-status", card)) {
        waitingFor = null;  // the download failed: the card says why
        if (dialog.open && current === card.id) { show(card); }
      }
    }
    if (dialog.open && current) {
      var shown = document.getElementById(current);
      if (shown && (shown.dataset.full || shown.dataset.picture) !== part("image").getAttribute("src")) { show(shown); }
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bind);
  } else {
    bind();
  }
})();
