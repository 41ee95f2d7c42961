// Keyboard-driven lists (Users, Groups, Deleted users): a table marked data-keys-list becomes an
// ARIA grid of rows with a roving tabindex, so a screen reader announces the row focus moves to.
//   /  search        j / ↓  next row      k / ↑  previous row     x / Space  select the row
//   Enter  open the row      Shift+A  bulk actions      Escape  clear the selection
//   ?  list these keys
// No key acts while someone types in a field or a dialog is open. The rows are swapped by htmx
// (search, sort, paging, bulk actions): the handlers sit on the document, and after a swap
// focus returns to the same row (by its checkbox's id) or to the row at the same place.
(function () {
  "use strict";

  var ROWS = "tbody tr";
  var remembered = null; // {id, index} of the focused row, kept across a swap

  function list() { return document.querySelector("table[data-keys-list]"); }

  function rows(table) {
    return Array.prototype.filter.call(table.querySelectorAll(ROWS), function (row) {
      return !!row.querySelector("input[name=ids]");
    });
  }

  function rowId(row) {
    var box = row.querySelector("input[name=ids]");
    return box ? box.value : null;
  }

  function typing(target) {
    if (!target || !target.closest) { return false; }
    if (target.isContentEditable || target.closest("textarea, select")) { return true; }
    var input = target.closest("input");
    return !!input && !/^(checkbox|radio|button|submit|reset|file|image|range|color)$/.test(input.type);
  }

  // Grid semantics and one tab stop: the current row (the first when none).
  function prepare(table) {
    if (!table) { return; }
    table.setAttribute("role", "grid");
    table.setAttribute("aria-multiselectable", "true");
    var all = rows(table);
    var current = all.filter(function (row) { return row.tabIndex === 0; })[0] || all[0];
    all.forEach(function (row) {
      var box = row.querySelector("input[name=ids]");
      row.setAttribute("aria-selected", box.checked ? "true" : "false");
      row.tabIndex = row === current ? 0 : -1;
    });
  }

  function focusRow(table, row) {
    if (!row) { return; }
    rows(table).forEach(function (other) { other.tabIndex = other === row ? 0 : -1; });
    row.focus();
    row.scrollIntoView({ block: "nearest" });
  }

  function currentRow(table) {
    var active = document.activeElement;
    var row = active && active.closest ? active.closest(ROWS) : null;
    return row && table.contains(row) ? row : null;
  }

  function move(table, step) {
    var all = rows(table);
    if (!all.length) { return; }
    var row = currentRow(table);
    var index = row ? all.indexOf(row) + step : 0;
    focusRow(table, all[Math.max(0, Math.min(all.length - 1, index))]);
  }

  // Ticking goes through the checkbox, so the selection bar counts it (portal.js).
  function toggle(row) {
    var box = row && row.querySelector("input[name=ids]:not([disabled])");
    if (box) { box.click(); }
  }

  function clearSelection(table) {
    var form = table.closest("form");
    var all = form && form.querySelector("[data-select-all-matching] input:checked");
    if (all) { all.click(); }
    var page = form && form.querySelector("[data-select-page]");
    if (page && (page.checked || page.indeterminate)) {
      page.checked = true;
      page.click(); // unticks the page, and with it every row
    }
    rows(table).forEach(function (row) {
      var box = row.querySelector("input[name=ids]:checked:not([disabled])");
      if (box) { box.click(); }
    });
  }

  function openRow(row) {
    var link = row && row.querySelector("a[href]");
    if (link) { link.click(); }
  }

  function bulkActions(table) {
    var form = table.closest("form");
    var bar = form && form.querySelector(".bulk-actions");
    var first = bar && bar.querySelector("button:not([disabled])");
    if (first) { first.focus(); }
  }

  function search() {
    var box = document.querySelector("[data-keys-search]");
    if (box) { box.focus(); box.select(); }
  }

  // The list of keys, in a modal dialog built once (nothing inline: CSP).
  var KEYS = [
    ["/", "Search"],
    ["j or ↓", "Next row"],
    ["k or ↑", "Previous row"],
    ["x or Space", "Select or unselect the row"],
    ["Enter", "Open the row", "open"],
    ["Shift+A", "Bulk actions for the selection"],
    ["Escape", "Clear the selection"],
    ["?", "Show these keys"]
  ];

  function help(table) {
    var dialog = document.getElementById("keys-help");
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.id = "keys-help";
      dialog.className = "confirm keys-help";
      dialog.setAttribute("aria-labelledby", "keys-help-title");
      var title = document.createElement("h2");
      title.id = "keys-help-title";
      title.textContent = "Keyboard shortcuts";
      var keys = document.createElement("dl");
      keys.className = "keys";
      var close = document.createElement("button");
      close.type = "button";
      close.textContent = "Close";
      close.addEventListener("click", function () { dialog.close(); });
      dialog.append(title, keys, close);
      dialog.addEventListener("close", function () {
        // The browser has given focus back to what had it; the current row takes it only when
        // that is gone (the rows were swapped meanwhile). The close event comes a task later,
        // so a key pressed meanwhile ("/" right after Escape) must keep where it went.
        var active = document.activeElement;
        if (active && active !== document.body) { return; }
        var row = rows(list() || document.createElement("table"))
          .filter(function (r) { return r.tabIndex === 0; })[0];
        if (row) { row.focus(); }
      });
      document.body.appendChild(dialog);
    }
    var keysList = dialog.querySelector("dl");
    keysList.textContent = "";
    var canOpen = rows(table).some(function (row) { return !!row.querySelector("a[href]"); });
    KEYS.forEach(function (key) {
      if (key[2] === "open" && !canOpen) { return; }
      var term = document.createElement("dt");
      key[0].split(" or ").forEach(function (name, index) {
        if (index) { term.appendChild(document.createTextNode(" or ")); }
        var kbd = document.createElement("kbd");
        kbd.textContent = name;
        term.appendChild(kbd);
      });
      var what = document.createElement("dd");
      what.textContent = key[1];
      keysList.append(term, what);
    });
    dialog.showModal();
    dialog.querySelector("button").focus();
  }

  document.addEventListener("keydown", function (event) {
    var table = list();
    if (!table || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (typing(event.target) || document.querySelector("dialog[open]")) { return; }
    var row = currentRow(table);
    var onRow = row && event.target === row; // a row's own link or box keeps its Enter and Space
    var key = event.key;
    if (key === "/") { search(); }
    else if (key === "j" || key === "ArrowDown") { move(table, 1); }
    else if (key === "k" || key === "ArrowUp") { move(table, -1); }
    else if (key === "x" || (key === " " && onRow)) { toggle(row); }
    else if (key === "Enter" && onRow) { openRow(row); }
    else if (key === "A" && event.shiftKey) { bulkActions(table); }
    else if (key === "Escape") { clearSelection(table); }
    else if (key === "?") { help(table); }
    else { return; }
    event.preventDefault();
  });

  // A ticked box marks its row selected (aria-selected), whoever ticked it.
  document.addEventListener("change", function (event) {
    var table = list();
    if (!table || !table.contains(event.target)) { return; }
    rows(table).forEach(function (row) {
      row.setAttribute("aria-selected", row.querySelector("input[name=ids]").checked ? "true" : "false");
    });
  });

  // Clicking into a row makes it the current one.
  document.addEventListener("focusin", function (event) {
    var table = list();
    var row = table && currentRow(table);
    if (row && row.tabIndex !== 0) {
      rows(table).forEach(function (other) { other.tabIndex = other === row ? 0 : -1; });
    }
  });

  document.body.addEventListener("htmx:beforeSwap", function () {
    var table = list();
    var row = table && currentRow(table);
    remembered = row ? { id: rowId(row), index: rows(table).indexOf(row) } : null;
  });
  document.body.addEventListener("htmx:afterSettle", function () {
    var table = list();
    prepare(table);
    if (!table || !remembered) { return; }
    var all = rows(table);
    var row = all.filter(function (r) { return rowId(r) === remembered.id; })[0]
      || all[Math.min(remembered.index, all.length - 1)];
    remembered = null;
    if (row && !document.querySelector("dialog[open]")) { focusRow(table, row); }
  });
  document.addEventListener("DOMContentLoaded", function () { prepare(list()); });
})();
