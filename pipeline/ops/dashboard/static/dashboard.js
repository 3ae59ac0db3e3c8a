// route dashboard: the live parts of its pages (the pages work without this script).
(function () {
  "use strict";
  function get(url) {
    return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error(url + ": " + r.status);
      return r.json();
    });
  }
  function text(s) { var d = document.createElement("div"); d.textContent = s == null ? "" : String(s); return d.innerHTML; }

  // The routes page: the runs running now, every 2 s.
  var running = document.getElementById("running");
  if (running) {
    setInterval(function () {
      get(running.getAttribute("data-poll")).then(function (data) { running.innerHTML = data.html; }).catch(function () {});
    }, 2000);
  }

  // A run's page while it runs: its progress every second, the whole page again once it ended.
  var live = document.getElementById("live");
  if (live) {
    var runId = live.getAttribute("data-run");
    var tick = function () {
      get("/api/runs/" + encodeURIComponent(runId) + ".json").then(function (run) {
        if (run.status !== "running" && run.status !== "starting") { window.location.reload(); return; }
        var p = run.progress || {};
        var rows = (p.targets || []).map(function (t) {
          return "<tr><th scope='row'>" + text(t.name) + "</th><td class='num'>" + text(t.arrived) + "</td><td>" +
            (t.committed ? "committed" : "in progress") + "</td></tr>";
        }).join("");
        var head = run.status === "starting" ? "<p>Starting\u2026</p>" : "<p>Running for " + text(p.elapsed) + " s.</p>";
        live.innerHTML = head + (rows ? "<table><thead><tr><th scope='col'>target</th><th scope='col'>rows arrived</th>" +
          "<th scope='col'>state</th></tr></thead><tbody>" + rows + "</tbody></table>" : "");
        var status = document.getElementById("run-status");
        if (status) status.innerHTML = "<span class='badge badge-" + text(run.status) + "'>" + text(run.status) + "</span>";
      }).catch(function () {}).then(function () { setTimeout(tick, 1000); });
    };
    setTimeout(tick, 500);
  }

  // A route's page: rows delivered and seconds per run, with uPlot.
  var chart = document.getElementById("chart");
  var source = document.getElementById("chart-data");
  if (chart && source && window.uPlot) {
    var runs = JSON.parse(source.textContent);
    if (!runs.length) { chart.textContent = "No finished run yet."; return; }
    var xs = runs.map(function (r) { return Date.parse(r.started) / 1000; });
    var data = [xs, runs.map(function (r) { return r.rows; }), runs.map(function (r) { return r.seconds; })];
    var opts = {
      width: Math.min(chart.clientWidth || 800, 960), height: 260,
      series: [{}, { label: "rows delivered", stroke: "#1f5fa8", width: 2, points: { show: true }, scale: "rows" },
        { label: "seconds", stroke: "#b35900", width: 2, dash: [6, 4], points: { show: true }, scale: "s" }],
      axes: [{}, { scale: "rows", label: "rows" }, { scale: "s", side: 1, label: "seconds", grid: { show: false } }],
      scales: { x: { time: true, range: function (u, min, max) {
        return min === max ? [min - 3600, max + 3600] : [min, max];  // one run: an hour either side
      } } }
    };
    new window.uPlot(opts, data, chart);
  }
})();
