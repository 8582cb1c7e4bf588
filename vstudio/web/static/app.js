// vstudio web page: live updates from the manager's event stream, small enhancements.
// No inline scripts (the page's CSP forbids them); every handler is bound here.
(function () {
  "use strict";
  function init() {
    bindGrid(document);
    bindPreview(document);
  }
  function bindGrid(root) {}
  function bindPreview(root) {}
  document.addEventListener("DOMContentLoaded", init);
})();
