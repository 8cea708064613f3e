/* Session timer of the PSU pages (the only script besides the decoupled-SCA poll).
   The server computes the seconds left (idle and whole-journey limits); when they run out the
   page submits the hidden timeout form, so the PSU goes back to the TPP with
   error=access_denied&error_description=timeout even if nothing else happens. */
(function () {
  "use strict";
  var timer = document.getElementById("session-timer");
  var form = document.getElementById("timeout-form");
  if (!timer || !form) {
    return;
  }
  var value = document.getElementById("session-timer-value");
  var deadline = Date.now() + Number(timer.getAttribute("data-seconds")) * 1000;
  var sent = false;

  function show(left) {
    var seconds = Math.max(0, Math.ceil(left / 1000));
    var rest = seconds % 60;
    value.textContent = Math.floor(seconds / 60) + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function tick() {
    var left = deadline - Date.now();
    show(left);
    if (left <= 0) {
      if (!sent) {
        sent = true;
        form.submit();
      }
      return;
    }
    window.setTimeout(tick, Math.min(1000, left));
  }

  tick();
})();
