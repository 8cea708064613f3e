/* Session timer of the PSU pages (the only script besides the decoupled-SCA poll).
   The server computes the seconds left (idle and whole-journey limits, RTS (EU) 2018/389
   Art. 4(3)(d)). WCAG 2.2.1 "Timing adjustable": 60 s before the end a warning appears
   (role=alert) at the top of the page, with a "continue" button (a plain button: the
   warning exists only with script, and a page's first submit button stays its own form's);
   that button, like the form under the timer, posts to the server — a PSU action,
   so it restarts the server's idle timer — and the countdown starts again from the seconds
   the server answers, without reloading the page (typed input is kept). When time runs out
   the page submits the hidden timeout form: the bank's "session expired" page follows.
   Without JavaScript the page shows the minutes left, the same button posts normally, and a
   meta refresh brings the expired page at the deadline. */
(function () {
  "use strict";
  var timer = document.getElementById("session-timer");
  var form = document.getElementById("timeout-form");
  var keep = document.getElementById("session-continue");
  var warned = document.getElementById("session-warning-continue");
  if (!timer || !form) {
    return;
  }
  var value = document.getElementById("session-timer-value");
  var live = document.getElementById("session-timer-live");
  var text = document.getElementById("session-timer-text");
  var warning = document.getElementById("session-warning");
  var warnAt = Number(timer.getAttribute("data-warn")) * 1000;
  var deadline = Date.now() + Number(timer.getAttribute("data-seconds")) * 1000;
  var sent = false;
  var pending = null;
  text.hidden = true;
  live.hidden = false;

  function show(left) {
    var seconds = Math.max(0, Math.ceil(left / 1000));
    var rest = seconds % 60;
    value.textContent = Math.floor(seconds / 60) + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function tick() {
    pending = null;
    var left = deadline - Date.now();
    show(left);
    warning.hidden = left > warnAt;
    if (left <= 0) {
      if (!sent) {
        sent = true;
        form.submit();
      }
      return;
    }
    pending = window.setTimeout(tick, Math.min(1000, left));
  }

  function extend(event) {
    event.preventDefault();
    var body = new FormData(keep);
    body.append("js", "1");
    fetch(keep.action, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error(String(response.status));
        }
        return response.json();
      })
      .then(function (answer) {
        deadline = Date.now() + Number(answer.seconds) * 1000;
        if (pending !== null) {
          window.clearTimeout(pending);
        }
        tick();
      })
      .catch(function () {
        keep.submit();
      });
  }

  if (keep) {
    keep.addEventListener("submit", extend);
    if (warned) {
      warned.addEventListener("click", extend);
    }
  }

  tick();
})();
