/* Decoupled SCA: ask the bank every 2 seconds whether the banking app answered; as soon as it
   did, submit the page's own form (the same one a PSU without JavaScript presses). */
(function () {
  "use strict";
  var form = document.getElementById("app-confirm-form");
  if (!form || !window.fetch) {
    return;
  }
  var url = form.getAttribute("data-status-url");

  function poll() {
    window.fetch(url, { credentials: "same-origin", cache: "no-store",
                        headers: { "Accept": "application/json" } })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (body.status === "pending") {
          window.setTimeout(poll, 2000);
          return;
        }
        var timeout = document.getElementById("timeout-form");
        if (body.status === "expired" && timeout) {
          timeout.submit();
          return;
        }
        form.submit();
      })
      .catch(function () { window.setTimeout(poll, 2000); });
  }

  window.setTimeout(poll, 2000);
})();
