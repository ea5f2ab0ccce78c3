// The group page's "Reprocess" form: POST /api/reprocess/{group} with the operator's bearer token.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.id !== "reprocess-form") return;
  event.preventDefault();
  var out = document.getElementById("reprocess-result");
  var token = document.getElementById("reprocess-token").value;
  fetch("/api/reprocess/" + encodeURIComponent(form.dataset.group), {
    method: "POST", headers: {"Authorization": "Bearer " + token}
  }).then(function (r) {
    return r.json().then(function (body) { return {ok: r.ok, status: r.status, body: body}; });
  }).then(function (res) {
    if (res.ok) {
      out.textContent = "queued again (was " + res.body.previous_state + ")";
      window.setTimeout(function () { window.location.reload(); }, 500);
    } else {
      out.textContent = "refused (" + res.status + "): " + res.body.detail;
      out.className = "bad";
    }
  }).catch(function (err) { out.textContent = "failed: " + err; out.className = "bad"; });
});
