// herald console: progress of a running replay or purge, and the reload of
// live pages. The pages work without it (they reload themselves through a
// <noscript> refresh); it only makes them smoother.
"use strict";
(function () {
  function text(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = value; }
  }
  function num(n) { return Number(n || 0).toLocaleString("en-US"); }

  var op = document.getElementById("op");
  if (op && op.dataset.status) {
    var poll = function () {
      fetch(op.dataset.status, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.json(); })
        .then(function (s) {
          var bar = document.getElementById("op-progress");
          if (bar) { bar.value = s.percent; }
          text("op-done", num(s.done));
          text("op-total", num(s.total));
          text("op-state", s.state);
          if (s.running) {
            setTimeout(poll, 500);
          } else {
            window.location.reload();
          }
        })
        .catch(function () { setTimeout(poll, 2000); });
    };
    if (document.getElementById("op-state").textContent === "running") {
      setTimeout(poll, 300);
    }
    return;
  }

  var refresh = Number(document.body.dataset.refresh || 0);
  if (refresh > 0) {
    var tick = function () {
      if (document.hidden) { setTimeout(tick, refresh * 1000); } else { window.location.reload(); }
    };
    setTimeout(tick, refresh * 1000);
  }
})();
