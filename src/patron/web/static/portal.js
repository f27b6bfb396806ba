/* Customer portal: copy buttons and single-submit forms (no third-party code). */
(function () {
  "use strict";
  if (window.patronPortalReady) return; /* loaded once per page, however often it is included */
  window.patronPortalReady = true;
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var field = document.querySelector(button.getAttribute("data-copy"));
    if (!field) return;
    var done = function () {
      var label = button.textContent;
      button.textContent = button.getAttribute("data-copied") || label;
      setTimeout(function () { button.textContent = label; }, 2000);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
    } else {
      field.select();
      try { document.execCommand("copy"); done(); } catch (e) { /* the text stays selected */ }
    }
  });
  /* a second click on a redeem button does nothing while the first submit is under way; the
     server's idempotency key makes a double submit that gets through redeem once anyway */
  document.addEventListener("submit", function (event) {
    var button = event.target.querySelector("[data-once]");
    if (!button) return;
    if (button.getAttribute("data-submitted")) { event.preventDefault(); return; }
    button.setAttribute("data-submitted", "1");
  });
})();
