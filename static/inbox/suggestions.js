/* Suggested replies in the composer (templates/inbox/suggestions/_strip.html): a click puts the
   suggestion's text into the reply box and focuses it. It never sends: the person reads, edits
   and sends it themselves. A viewer's letter that arrives while the thread is open (the thread
   poll appends it) asks for suggestions for it. */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-suggestion]");
    if (!button) { return; }
    var form = button.closest("form");
    var text = form && form.querySelector("textarea[name=text]");
    if (!text) { return; }
    event.preventDefault();
    var suggestion = button.dataset.suggestion;
    if (text.value.trim() === "") {
      text.value = suggestion;
      text.setSelectionRange(suggestion.length, suggestion.length);
    } else {
      // Something is written already: the suggestion goes where the caret is (or replaces
      // the selection), so nothing typed is lost.
      text.setRangeText(suggestion, text.selectionStart, text.selectionEnd, "end");
    }
    // The composer's own listeners (length count, height) hear of the change.
    text.dispatchEvent(new Event("input", { bubbles: true }));
    text.focus();
  });

  function newestLetter(box) {
    var letters = box.querySelectorAll("article.message");
    return letters.length ? letters[letters.length - 1] : null;
  }

  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var box = event.detail.target;
    if (!box || !box.classList || !box.classList.contains("messages")) { return; }
    var strip = document.querySelector(".suggestions[data-suggestions-url]");
    var newest = newestLetter(box);
    if (!strip || !newest || !newest.classList.contains("message-in")) { return; }
    if (strip.dataset.after === newest.id) { return; }
    strip.dataset.after = newest.id;
    htmx.ajax("GET", strip.dataset.suggestionsUrl, { target: strip, swap: "outerHTML" }).then(function () {
      var fresh = document.getElementById(strip.id);
      if (fresh) { fresh.dataset.after = newest.id; }
    });
  });
})();
