/* The console's whole progressive enhancement (no framework, no build step).
 *
 * Without JavaScript every page works with plain links and form posts. With it:
 * - pages that carry data-live subscribe to the server-sent event stream; on an event the page
 *   re-fetches its own server-rendered fragment (data-refresh) into data-target, so what is shown
 *   is always what the server lets this person see (the stream only says *that* something changed);
 * - "Use as draft" copies the suggested answer into the reply box.
 */
(function () {
  "use strict";
  var body = document.body;

  function refresh() {
    var url = body.getAttribute("data-refresh");
    var target = document.getElementById(body.getAttribute("data-target") || "");
    if (!url || !target) return;
    fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          target.innerHTML = html; // server-rendered and escaped by Jinja autoescape
          body.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () { /* the next event retries */ });
  }

  var timer = null;
  function schedule() {
    if (timer) return;
    timer = setTimeout(function () { timer = null; refresh(); }, 150);
  }

  var liveUrl = body.getAttribute("data-live");
  var badge = document.getElementById("live");
  function setLive(on) {
    if (!badge) return;
    badge.textContent = badge.getAttribute(on ? "data-on" : "data-off");
    badge.classList.toggle("on", on);
    body.setAttribute("data-live-state", on ? "open" : "closed");
  }
  if (liveUrl && window.EventSource) {
    var source = new EventSource(liveUrl);
    source.onopen = function () { setLive(true); };
    source.onerror = function () { setLive(false); };
    source.onmessage = function () { schedule(); };
    source.addEventListener("signed-out", function () { source.close(); window.location.reload(); });
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("[data-copy-from]") : null;
    if (!button) return;
    var from = document.getElementById(button.getAttribute("data-copy-from"));
    var to = document.getElementById(button.getAttribute("data-copy-to"));
    if (from && to) { to.value = from.textContent; to.focus(); }
  });
})();
