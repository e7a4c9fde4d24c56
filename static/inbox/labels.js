/* Finder Inbox: the thread header's label picker. `l` (or the Labels button) opens it and loads
   the labels (htmx); typing filters them, ↑/↓ choose, Enter puts the chosen label on or takes it
   off (the server answers with the list again), Esc closes (inbox.js closes header menus). With
   no match and creation allowed, the last option creates a label of that name. */
(function () {
  "use strict";

  function $$(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function typing(target) {
    return target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function menuOf(el) { return el && el.closest ? el.closest("[data-label-menu]") : null; }
  function pickerOf(menu) { return menu.querySelector("[data-label-picker]"); }
  function searchOf(picker) { return picker.querySelector("[data-label-search]"); }

  /* Opening the menu loads the picker (once per header render). */
  document.addEventListener("toggle", function (event) {
    var menu = event.target;
    if (!menu.matches || !menu.matches("[data-label-menu]") || !menu.open) { return; }
    var picker = pickerOf(menu);
    if (picker) { focusSearch(picker); return; }
    var panel = menu.querySelector(".label-panel");
    htmx.ajax("GET", menu.dataset.pickerUrl, { target: panel, swap: "innerHTML" }).then(function () {
      var loaded = pickerOf(menu);
      if (loaded && menu.open) { focusSearch(loaded); }
    });
  }, true);

  function focusSearch(picker) {
    var search = searchOf(picker);
    if (!search) { return; }
    search.focus();
    search.select();
    apply(picker);
  }

  /* The options that match what is typed; the "create" option when nothing matches exactly. */
  function visible(picker) {
    return $$('[role="option"]', picker).filter(function (option) { return !option.hidden; });
  }

  function apply(picker, keepActive) {
    var search = searchOf(picker);
    var query = (search.value || "").trim().toLowerCase();
    var exact = false;
    $$('[role="option"][data-name]', picker).forEach(function (option) {
      var name = option.dataset.name;
      option.hidden = query !== "" && name.indexOf(query) === -1;
      if (name === query) { exact = true; }
    });
    var create = picker.querySelector("[data-label-create]");
    if (create) {
      create.hidden = query === "" || exact;
      create.querySelector("button").value = search.value.trim();
      create.querySelector("[data-label-create-name]").textContent = search.value.trim();
    }
    var empty = picker.querySelector("[data-label-empty]");
    var options = visible(picker);
    if (empty && $$('[role="option"][data-name]', picker).length) { empty.hidden = options.length > 0; }
    var active = keepActive && document.getElementById(search.getAttribute("aria-activedescendant") || "");
    setActive(picker, active && !active.hidden ? active : options[0] || null);
  }

  function setActive(picker, option) {
    var search = searchOf(picker);
    $$('[role="option"]', picker).forEach(function (el) { el.classList.toggle("is-active", el === option); });
    if (option) {
      search.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else {
      search.removeAttribute("aria-activedescendant");
    }
  }

  function move(picker, delta) {
    var options = visible(picker);
    if (!options.length) { return; }
    var current = options.findIndex(function (el) { return el.classList.contains("is-active"); });
    var next = Math.min(Math.max(current + delta, 0), options.length - 1);
    setActive(picker, options[current < 0 ? 0 : next]);
  }

  document.addEventListener("input", function (event) {
    if (event.target.matches("[data-label-search]")) { apply(event.target.closest("[data-label-picker]")); }
  });

  document.addEventListener("keydown", function (event) {
    if (!event.target.matches || !event.target.matches("[data-label-search]")) { return; }
    if (event.isComposing || event.keyCode === 229) { return; }
    var picker = event.target.closest("[data-label-picker]");
    if (event.key === "ArrowDown") { event.preventDefault(); move(picker, 1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); move(picker, -1); }
    else if (event.key === "Enter") {
      event.preventDefault();
      var active = picker.querySelector('[role="option"].is-active:not([hidden]) button');
      if (active) { active.click(); }
    }
  });

  /* A pick answers with the options again: keep the filter and the chosen option. */
  document.addEventListener("htmx:afterSwap", function (event) {
    var picker = event.detail.target && event.detail.target.closest ? event.detail.target.closest("[data-label-picker]") : null;
    if (!picker) {
      var swapped = event.detail.elt;
      picker = swapped && swapped.closest ? swapped.closest("[data-label-picker]") : null;
    }
    if (picker && searchOf(picker)) { apply(picker, true); }
  });

  /* `l`: open the open thread's label picker. */
  document.addEventListener("keydown", function (event) {
    if (event.key !== "l" || event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) { return; }
    var menu = document.querySelector("#thread [data-label-menu]");
    if (!menu) { return; }
    event.preventDefault();
    if (menu.open) {
      var picker = pickerOf(menu);
      if (picker) { focusSearch(picker); }
    } else {
      menu.open = true;
    }
  });

  /* Clicking an option keeps the focus in the search box, so the keys go on working. */
  document.addEventListener("click", function (event) {
    var option = event.target.closest && event.target.closest("[data-label-picker] [role=option]");
    if (option) {
      var picker = option.closest("[data-label-picker]");
      setActive(picker, option);
      setTimeout(function () { var search = searchOf(picker); if (search) { search.focus(); } }, 0);
    }
  });
})();
