// Reload the page content every data-refresh seconds while the pipeline runs (plain JS, no build step).
(function () {
  var seconds = parseFloat(document.body.dataset.refresh || "0");
  if (!seconds) return;
  function enabled() {
    var box = document.getElementById("autorefresh");
    return (!box || box.checked) && !document.hidden;
  }
  function reload() {
    if (!enabled()) return;
    fetch(window.location.href, {headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("content");
        if (fresh) document.getElementById("content").innerHTML = fresh.innerHTML;
        document.body.dataset.refreshedAt = new Date().toISOString();
      })
      .catch(function () { /* server restarting: try again next tick */ });
  }
  window.setInterval(reload, seconds * 1000);
})();
