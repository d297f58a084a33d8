// Calls in progress, and new calls as they finish: poll live.json about once a second.
// The list page only; each refresh replaces the in-progress rows and adds new finished calls on top.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live) { return; }
  var url = live.getAttribute("data-live-url");
  var failures = 0;

  function cell(row, text) { var td = document.createElement("td"); td.textContent = text; row.appendChild(td); return td; }
  function link(row, sid) {
    var td = document.createElement("td"), a = document.createElement("a");
    a.href = "calls/" + encodeURIComponent(sid); a.textContent = sid; td.appendChild(a); row.appendChild(td);
  }

  function showActive(calls) {
    var body = document.querySelector("#live-table tbody");
    body.textContent = "";
    calls.forEach(function (c) {
      var tr = document.createElement("tr"); tr.setAttribute("data-sid", c.call_sid);
      cell(tr, c.started); link(tr, c.call_sid); cell(tr, c.direction); cell(tr, c.scenario);
      cell(tr, c.seconds === null ? "-" : c.seconds.toFixed(1)); cell(tr, c.turns); cell(tr, c.last_line).className = "said";
      body.appendChild(tr);
    });
    document.getElementById("live-count").textContent = calls.length;
    document.getElementById("live-empty").hidden = calls.length > 0;
  }

  // Stored calls: new ones go on top; a call stored while in progress gets its length and outcome.
  function addFinished(rows) {
    var body = document.querySelector("#calls tbody");
    rows.slice().reverse().forEach(function (c) {
      var seen = body.querySelector('tr[data-sid="' + CSS.escape(c.call_sid) + '"]');
      if (seen) {
        seen.cells[5].textContent = c.seconds === null ? "-" : String(c.seconds);
        seen.cells[6].textContent = c.outcome;
        return;
      }
      var tr = document.createElement("tr"); tr.setAttribute("data-sid", c.call_sid); tr.className = "fresh";
      cell(tr, c.started); link(tr, c.call_sid); cell(tr, c.direction); cell(tr, c.scenario); cell(tr, c.path);
      cell(tr, c.seconds === null ? "-" : String(c.seconds)); cell(tr, c.outcome);
      body.insertBefore(tr, body.firstChild);
      document.getElementById("calls-empty").hidden = true;
    });
  }

  function poll() {
    fetch(url, { headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
      .then(function (data) { failures = 0; showActive(data.active); addFinished(data.recent); })
      .catch(function () { failures += 1; })
      .then(function () { setTimeout(poll, failures ? Math.min(10000, 1000 * Math.pow(2, failures)) : 1000); });
  }
  setTimeout(poll, 1000);
})();
