/* tasker dashboard: live refresh of the parts of a page that change (no dependencies, no build step).
 *
 * A page showing unfinished work has <main data-refresh="N">. Every N seconds (while the tab is visible)
 * the page is fetched again and each element marked data-live is replaced by its fresh copy (same id);
 * open <details> and the focused element are kept. Refreshing stops when the fresh page has nothing
 * running any more.
 */
(function () {
  "use strict";

  function main() {
    return document.querySelector("main[data-refresh]");
  }

  function schedule() {
    var el = main();
    if (!el) { return; }
    var seconds = Math.max(Number(el.getAttribute("data-refresh")) || 5, 1);
    window.setTimeout(refresh, seconds * 1000);
  }

  function swap(region, fresh) {
    var open = Array.prototype.map.call(region.querySelectorAll("details[open][id]"), function (d) { return d.id; });
    var active = document.activeElement;
    var focusId = active && region.contains(active) ? active.id : null;
    region.innerHTML = fresh.innerHTML;
    open.forEach(function (id) {
      var details = document.getElementById(id);
      if (details) { details.open = true; }
    });
    if (focusId) {
      var again = document.getElementById(focusId);
      if (again) { again.focus(); }
    }
  }

  function refresh() {
    if (document.hidden) {
      document.addEventListener("visibilitychange", refresh, { once: true });
      return;
    }
    window.fetch(window.location.href, { credentials: "same-origin", headers: { "X-Tasker-Live": "1" } })
      .then(function (response) {
        if (!response.ok || response.redirected) { throw new Error("refresh: " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var next = new window.DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (region) {
          var fresh = next.getElementById(region.id);
          if (fresh) { swap(region, fresh); }
        });
        var nextMain = next.querySelector("main");
        var el = main();
        if (el && !(nextMain && nextMain.hasAttribute("data-refresh"))) {
          el.removeAttribute("data-refresh");
          var note = document.querySelector(".live-note");
          if (note) { note.textContent = "up to date"; }
        }
        schedule();
      })
      .catch(function () { window.setTimeout(schedule, 5000); });
  }

  document.addEventListener("DOMContentLoaded", schedule);
}());
