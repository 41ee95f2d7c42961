// Behaviour that CSP keeps out of the markup (no inline scripts or handlers).
(function () {
  "use strict";

  // The side panel (templates/base.html: <dialog id="sidebar">) is a modal dialog. htmx fills
  // it; it opens with showModal() (top layer, the page behind inert, Escape closes it), focus
  // moves to its first field (or the first field in error after a refused submit), and once
  // closed it is emptied and focus goes back to what opened it.
  var FIELDS = "input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled])";
  var FOCUSABLE = FIELDS + ", button:not([disabled]), a[href], summary";
  var panelOpener = null;

  // (A closed <details> hides its content with content-visibility: it keeps its boxes.)
  function visible(el) {
    return !!el && (el.checkVisibility ? el.checkVisibility() : el.getClientRects().length > 0);
  }

  // Where focus goes in a dialog: the first field in error, else the first field, else its
  // confirm button, else anything focusable.
  function focusInside(dialog) {
    var target = dialog.querySelector("[aria-invalid=true]")
      || Array.prototype.find.call(dialog.querySelectorAll(FIELDS), visible)
      || dialog.querySelector("button[type=submit]:not([disabled])")
      || Array.prototype.find.call(dialog.querySelectorAll(FOCUSABLE), visible);
    if (target) { target.focus(); }
  }

  // Give focus back to what opened a dialog; an item of a menu that has closed since gives it
  // to the menu's button.
  function giveBackFocus(opener) {
    if (!opener || !opener.isConnected) { return; }
    if (!visible(opener)) {
      var menu = opener.closest("details");
      opener = menu ? menu.querySelector("summary") : null;
    }
    if (opener) { opener.focus(); }
  }

  function panel() { return document.getElementById("sidebar"); }

  function showPanel() {
    var sidebar = panel();
    if (!sidebar || !sidebar.children.length) { return; }
    if (!sidebar.open || !sidebar.matches(":modal")) {
      // A whole page renders the panel open (visible without JavaScript): reopen it modally.
      // (The close event comes later, as a task: it is told to keep the content.)
      if (sidebar.open) { sidebar.dataset.reopening = "y"; sidebar.close(); }
      var heading = sidebar.querySelector("h2[id], h1[id]");
      if (heading) { sidebar.setAttribute("aria-labelledby", heading.id); }
      sidebar.showModal();
    }
    focusInside(sidebar);
  }

  function closePanel() {
    var sidebar = panel();
    if (sidebar && sidebar.open) { sidebar.close(); } else if (sidebar) { sidebar.innerHTML = ""; }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var sidebar = panel();
    if (!sidebar) { return; }
    sidebar.addEventListener("close", function () {
      if (sidebar.dataset.reopening) { delete sidebar.dataset.reopening; return; }
      sidebar.innerHTML = "";
      sidebar.removeAttribute("aria-labelledby");
      var opener = panelOpener;
      panelOpener = null;
      giveBackFocus(opener);
    });
    showPanel();
  });

  // Remember what opened the panel (a request from outside it that answers into it).
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    var sidebar = panel();
    if (sidebar && event.detail.target === sidebar && !sidebar.contains(event.detail.elt)) {
      panelOpener = document.activeElement && document.activeElement !== document.body
        ? document.activeElement : event.detail.elt;
    }
  });

  // A valid panel form answers with HX-Trigger: closeSidebar (before its swap, which then
  // brings only out-of-band parts and white space).
  document.body.addEventListener("closeSidebar", closePanel);

  function panelSwapped(event) {
    var sidebar = panel();
    if (!sidebar || event.detail.target !== sidebar) { return; }
    if (sidebar.children.length) { showPanel(); } else { closePanel(); }
  }
  document.body.addEventListener("htmx:afterSettle", panelSwapped);
  // A refused form elsewhere (User Details' profile answers out of band) focuses its first
  // field in error too, rather than leaving focus on the page.
  document.body.addEventListener("htmx:afterSettle", function (event) {
    var xhr = event.detail.xhr;
    if (!xhr || xhr.status !== 422 || event.detail.target === panel()) { return; }
    var invalid = document.querySelector("[aria-invalid=true]");
    if (invalid && !invalid.closest("dialog:not([open])")) { invalid.focus(); }
  });
  document.body.addEventListener("htmx:oobAfterSwap", panelSwapped);

  // The one confirmation (templates/_confirm.html): htmx swaps a <dialog data-modal> into
  // #confirm; open it modally (top layer, inert page, Escape closes it), focus its confirm
  // button, and drop it once closed, giving focus back to what asked.
  function openConfirmation(event) {
    var target = event.detail.target;
    var dialog = target && target.querySelector("dialog[data-modal]:not([open])");
    if (!dialog) { return; }
    var opener = document.activeElement;
    dialog.addEventListener("close", function () {
      dialog.remove();
      if (opener && opener.isConnected) { opener.focus(); }
    });
    dialog.showModal();
    var first = dialog.querySelector("button[type=submit]") || dialog.querySelector("button");
    if (first) { first.focus(); }
  }
  document.body.addEventListener("htmx:afterSwap", openConfirmation);
  // An answer elsewhere that brings a question out of band (a delete that left someone
  // blocked says why in the dialog) opens it the same way.
  document.body.addEventListener("htmx:oobAfterSwap", openConfirmation);
  // A confirm button that answers elsewhere (hx-target="#devices") closes its dialog.
  document.body.addEventListener("htmx:afterRequest", function (event) {
    var dialog = event.detail.elt.closest && event.detail.elt.closest("dialog[data-modal]");
    if (dialog && dialog.open && event.detail.successful) { dialog.close(); }
  });
  document.addEventListener("click", function (event) {
    var closer = event.target.closest("dialog [data-close-dialog]");
    if (closer) {
      event.preventDefault();
      closer.closest("dialog").close();
    }
  });

  // Close and Cancel (data-close-sidebar) close the panel; without JavaScript they are links.
  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-close-sidebar]");
    if (closer) {
      event.preventDefault();
      closePanel();
    }
  });

  // Menus (<details class="menu">: Admin, Import/Export, the phone's menu) open by keyboard as
  // buttons do (Enter, Space); Escape closes the open one and puts focus back on its button,
  // and focus leaving a menu closes it.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    var open = document.querySelectorAll("details.menu[open]");
    if (!open.length) { return; }
    open.forEach(function (menu) {
      menu.removeAttribute("open");
      if (menu.contains(document.activeElement)) { menu.querySelector("summary").focus(); }
    });
    event.preventDefault();
  });
  document.addEventListener("focusin", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });

  // An open navigation menu closes when the person clicks anywhere else.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.removeAttribute("open"); }
    });
  });

  // Users list selection (templates/users/index.html). The header checkbox selects the page;
  // once the page is selected, "Select all N matching" offers the whole filtered set. With it
  // on, the id boxes are disabled so the form sends all_matching=y and the filter, not ids.
  function updateSelection(form) {
    var bar = form.querySelector("[data-selection-bar]");
    if (!bar) { return; }
    var boxes = form.querySelectorAll("input[name=ids]");
    var checked = form.querySelectorAll("input[name=ids]:checked").length;
    var header = form.querySelector("[data-select-page]");
    var allLabel = form.querySelector("[data-select-all-matching]");
    var all = allLabel ? allLabel.querySelector("input") : null;
    var count = bar.querySelector("[data-selection-count]");
    var matching = !!(all && all.checked);
    if (!count.dataset.idle) { count.dataset.idle = count.textContent; }
    boxes.forEach(function (box) { box.disabled = matching; if (matching) { box.checked = true; } });
    if (header) {
      header.checked = boxes.length > 0 && (matching || checked === boxes.length);
      header.indeterminate = !matching && checked > 0 && checked < boxes.length;
    }
    if (allLabel) { allLabel.hidden = !(matching || (boxes.length && checked === boxes.length)); }
    var total = Number(bar.dataset.total).toLocaleString("en");
    count.textContent = matching ? "All " + total + " matching users selected"
      : checked ? checked + " selected" : count.dataset.idle;
    bar.classList.toggle("has-selection", matching || checked > 0);
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    var form = target.closest("form");
    if (!form || !form.querySelector("[data-selection-bar]")) { return; }
    if (target.matches("[data-select-page]")) {
      var all = form.querySelector("[data-select-all-matching] input");
      if (!target.checked && all) { all.checked = false; }
      form.querySelectorAll("input[name=ids]").forEach(function (box) {
        box.disabled = false;
        box.checked = target.checked;
      });
    }
    if (target.matches("input[name=ids], [data-select-page], [data-select-all-matching] input")) {
      updateSelection(form);
    }
  });

  // A checkbox with data-check-all="NAME" ticks or clears every box called NAME in its form
  // (the import preview's rows on this page).
  document.addEventListener("change", function (event) {
    var all = event.target.closest("[data-check-all]");
    if (!all || !all.form) { return; }
    all.form.querySelectorAll("input[name='" + all.dataset.checkAll + "']").forEach(function (box) {
      box.checked = all.checked;
    });
  });

  // Choosing an item of a drop-down menu (Import/Export) closes the menu.
  document.addEventListener("click", function (event) {
    var item = event.target.closest("details.menu .menu-body a");
    if (item) { item.closest("details.menu").removeAttribute("open"); }
  });

  // Member picker (templates/groups/_macros.html): ticking a search result moves it up into
  // the chosen chips, so the next search (which sends the chosen ids) does not lose it;
  // unticking a chip drops it. Enter in the search box searches instead of submitting.
  document.addEventListener("change", function (event) {
    var box = event.target;
    var picker = box.closest("[data-picker]");
    if (!picker || box.name !== "member_ids") { return; }
    var picked = picker.querySelector("[data-picked]");
    if (box.checked && !picked.contains(box)) {
      var row = box.closest("li");
      var chip = document.createElement("label");
      chip.className = "chip chosen";
      chip.appendChild(box);
      chip.appendChild(document.createTextNode(" " + row.querySelector(".who").textContent));
      picked.appendChild(chip);
      row.remove();
    } else if (!box.checked && picked.contains(box)) {
      box.closest("label").remove();
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.matches("[data-picker] input[type=search]")) {
      event.preventDefault();
    }
  });

  // A button with data-copy="<input id>" copies that input's value (Copy invitation link);
  // where the Clipboard API is unavailable (plain HTTP), the text is selected to copy by hand.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var input = document.getElementById(button.getAttribute("data-copy"));
    input.select();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () { button.textContent = "Copied"; });
    } else if (document.execCommand("copy")) {
      button.textContent = "Copied";
    }
  });
  document.addEventListener("focusin", function (event) {
    if (event.target.matches("[data-select-on-focus]")) { event.target.select(); }
  });

  // Flash messages fade away after a while.
  function expireFlashes(root) {
    (root || document).querySelectorAll(".flash").forEach(function (flash) {
      setTimeout(function () { flash.remove(); }, 8000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { expireFlashes(); });
  document.body.addEventListener("htmx:oobAfterSwap", function (event) { expireFlashes(event.detail.target); });
})();
