// llmaudit ui: the one script of the viewer (no inline script anywhere: the CSP forbids it).
// It only adds live mode to the sessions list; every page works without it.
(function () {
  "use strict";
  var button = document.getElementById("live-toggle");
  if (!button || button.disabled) { return; }
  var status = document.getElementById("live-status");
  var rows = document.getElementById("session-rows");
  var interval = parseInt(button.getAttribute("data-interval"), 10) || 3000;
  var timer = null;
  var marker = null;

  function say(text) { if (status) { status.textContent = text; } }

  function refresh() {
    // the rows come from the server already escaped; they are parsed, never run (scripts in parsed
    // HTML do not execute, and the CSP allows no inline script)
    return fetch(button.getAttribute("data-rows"), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString("<table><tbody>" + html + "</tbody></table>", "text/html");
        var body = doc.querySelector("tbody");
        var fresh = [];
        body.childNodes.forEach(function (n) { fresh.push(document.importNode(n, true)); });
        rows.replaceChildren.apply(rows, fresh);
        say("Updated " + new Date().toLocaleTimeString());
      });
  }

  function poll() {
    fetch(button.getAttribute("data-latest"), { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (data) {
        var changed = marker !== null && data.marker !== marker;
        marker = data.marker;
        button.setAttribute("data-seen", marker);  // what the last poll found (tests wait for it)
        return changed ? refresh() : null;
      })
      .catch(function (e) { say("Live mode paused: " + e.message); });
  }

  button.addEventListener("click", function () {
    var on = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", on ? "true" : "false");
    if (on) {
      marker = null;
      poll();
      timer = window.setInterval(poll, interval);
      say("Live: new calls appear as they are recorded");
    } else {
      window.clearInterval(timer);
      timer = null;
      say("Live mode off");
    }
  });
})();
