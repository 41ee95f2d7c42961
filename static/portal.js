// Behaviour that CSP keeps out of the markup (no inline scripts or handlers).
(function () {
  "use strict";

  // A valid sidebar form answers with HX-Trigger: closeSidebar.
  document.body.addEventListener("closeSidebar", function () {
    var sidebar = document.getElementById("sidebar");
    if (sidebar) { sidebar.innerHTML = ""; }
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

  // Flash messages fade away after a while.
  function expireFlashes(root) {
    (root || document).querySelectorAll(".flash").forEach(function (flash) {
      setTimeout(function () { flash.remove(); }, 8000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { expireFlashes(); });
  document.body.addEventListener("htmx:oobAfterSwap", function (event) { expireFlashes(event.detail.target); });
})();
