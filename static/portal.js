// Behaviour that CSP keeps out of the markup (no inline scripts or handlers).
(function () {
  "use strict";

  // A valid sidebar form answers with HX-Trigger: closeSidebar.
  document.body.addEventListener("closeSidebar", function () {
    var sidebar = document.getElementById("sidebar");
    if (sidebar) { sidebar.innerHTML = ""; }
  });

  // HX-Trigger events fire before the swap, so a sidebar form's answer (only out-of-band parts
  // and whitespace) would leave the panel open but blank: empty it for good (":empty" hides it).
  document.body.addEventListener("htmx:afterSwap", function () {
    var sidebar = document.getElementById("sidebar");
    if (sidebar && !sidebar.children.length && !sidebar.textContent.trim()) { sidebar.innerHTML = ""; }
  });

  // The one confirmation (templates/_confirm.html): htmx swaps a <dialog data-modal> into
  // #confirm; open it modally (top layer, inert page, Escape closes it), focus its confirm
  // button, and drop it once closed, giving focus back to what asked.
  document.body.addEventListener("htmx:afterSwap", function (event) {
    var dialog = event.detail.target.querySelector("dialog[data-modal]:not([open])");
    if (!dialog) { return; }
    var opener = document.activeElement;
    dialog.addEventListener("close", function () {
      dialog.remove();
      if (opener && opener.isConnected) { opener.focus(); }
    });
    dialog.showModal();
    var first = dialog.querySelector("button[type=submit]");
    if (first) { first.focus(); }
  });
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

  // Any element with data-close-sidebar empties the sidebar when clicked.
  document.addEventListener("click", function (event) {
    var closer = event.target.closest("[data-close-sidebar]");
    if (closer) {
      event.preventDefault();
      document.getElementById("sidebar").innerHTML = "";
    }
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
