/* Finder Inbox: sizes and colours that depend on the data. The Content-Security-Policy forbids
   style="" attributes (an injected one could restyle the page), so templates write the values as
   data-* attributes and this sets them through the DOM, which the policy allows:
     data-hue="120"           an avatar's colour (the --hue custom property)
     data-width="240"         an image card's width in CSS pixels
     data-aspect-ratio="4 / 3"  an image frame's shape, so the card keeps its size while loading
   A MutationObserver applies them to whatever is added later (htmx swaps, rows the poll merges),
   before the browser paints it. */
(function () {
  "use strict";

  var SELECTOR = "[data-hue], [data-width], [data-aspect-ratio]";

  function apply(el) {
    var data = el.dataset;
    if (data.hue) { el.style.setProperty("--hue", data.hue); }
    if (data.width) { el.style.width = data.width + "px"; }
    if (data.aspectRatio) { el.style.aspectRatio = data.aspectRatio; }
  }

  function applyWithin(root) {
    if (root.nodeType !== Node.ELEMENT_NODE) { return; }
    if (root.matches(SELECTOR)) { apply(root); }
    Array.prototype.forEach.call(root.querySelectorAll(SELECTOR), apply);
  }

  new MutationObserver(function (mutations) {
    mutations.forEach(function (mutation) {
      Array.prototype.forEach.call(mutation.addedNodes, applyWithin);
    });
  }).observe(document.documentElement, { childList: true, subtree: true });

  applyWithin(document.documentElement);
})();
