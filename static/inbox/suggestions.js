/* Suggested replies in the composer (templates/inbox/suggestions/_strip.html): a click puts the
   suggestion's text into the reply box and focuses it. It never sends: the person reads, edits
   and sends it themselves. */
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
})();
