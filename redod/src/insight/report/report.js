// The redo timings report: draws the build embedded as JSON in #timings-data (written by
// redod's insight::report; its data.rs documents the fields). No network, no library: plain
// DOM and canvas. Names from the build are only ever set with textContent.
//
// When done it records on <body>: data-status="ok" (the onerror handler in the page's head
// sets "error"), data-bars (targets drawn on the timeline, one-pixel ones included),
// data-rects (rectangles filled for them: fewer when sub-pixel bars are merged),
// data-render-ms (performance.now() at the end: the time the page took to open).
(function () {
  "use strict";
  var COLORS = { built: "#3b7dd8", cached: "#2e9e5b", failed: "#d93a3a", interrupted: "#9a9a9a" };
  // Which outcome wins a pixel shared by several sub-pixel bars.
  var RANK = { cached: 1, built: 2, interrupted: 3, failed: 4 };
  var BY_RANK = [null, "cached", "built", "interrupted", "failed"];
  var CRITICAL = "#f0a500";
  var GUTTER = 64, AXIS = 22, RIGHT = 12;

  var D = JSON.parse(document.getElementById("timings-data").textContent);
  var spans = D.spans;
  var wall = Math.max(D.wall, 1);
  var critical = new Uint8Array(spans.length);
  D.critical.forEach(function (i) { critical[i] = 1; });
  var lanes = Math.max(D.totals.lanes, 1);
  var byLane = [];
  for (var l = 0; l < lanes; l++) byLane.push([]);
  spans.forEach(function (s, i) { byLane[s.l].push(i); });
  byLane.forEach(function (list) { list.sort(function (a, b) { return spans[a].s - spans[b].s; }); });
  var selected = -1;

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function fmt(us) {
    if (us === 0) return "0";
    if (us < 1000) return (us / 1000).toFixed(3) + " ms";
    if (us < 1e6) return (us / 1000).toFixed(us < 1e5 ? 1 : 0) + " ms";
    if (us < 6e7) return (us / 1e6).toFixed(2) + " s";
    var m = Math.floor(us / 6e7);
    return m + " min " + ((us - m * 6e7) / 1e6).toFixed(1) + " s";
  }

  function jobsText() { return D.jobs === null ? "unlimited" : String(D.jobs); }

  function details(i) {
    var s = spans[i];
    var lines = [
      s.t,
      "outcome:    " + s.o + (critical[i] ? " (on the critical path)" : ""),
      "duration:   " + fmt(s.e - s.s),
      ".do:        " + (s.d === null ? "(none)" : s.d),
      "slot:       " + (s.l + 1),
      "ran:        " + fmt(s.s) + " to " + fmt(s.e),
      "token wait: " + fmt(s.q)
    ];
    if (s.w.length) {
      var waited = s.w.reduce(function (a, w) { return a + w[1] - w[0]; }, 0);
      lines.push("waited:     " + fmt(waited) + " in " + s.w.length + " nested request(s) for " + s.f + " target(s)");
    }
    return lines.join("\n");
  }

  function select(i) {
    selected = i;
    document.getElementById("details").textContent = details(i);
    drawTimeline();
  }

  // --- header and totals ---------------------------------------------------------------
  function header() {
    document.getElementById("when").textContent = "Build started " + D.started + ", " +
      spans.length + " target runs recorded.";
    var banner = document.getElementById("banner");
    if (D.interrupted || D.totals.failed) {
      banner.textContent = D.interrupted ? "The build was interrupted: this is what ran until then." :
        "The build failed: " + D.totals.failed + " target(s) failed.";
      banner.hidden = false;
    }
    var items = [
      ["Wall time", fmt(D.wall)], ["-j", jobsText()], ["Built", D.totals.built],
      ["Up to date", D.totals.up_to_date], ["From the cache", D.totals.cached],
      ["Failed", D.totals.failed], ["Interrupted", D.totals.interrupted],
      ["Slots used", D.totals.lanes], ["Peak jobs", D.peak],
      ["Average jobs", D.average.toFixed(2)], ["Waiting for a job token", fmt(D.token_wait)]
    ];
    var dl = document.getElementById("totals");
    items.forEach(function (kv) {
      var d = el("div");
      d.appendChild(el("dt", kv[0]));
      d.appendChild(el("dd", String(kv[1])));
      dl.appendChild(d);
    });
    var legend = document.getElementById("legend");
    [["built", COLORS.built], ["from the cache", COLORS.cached], ["failed", COLORS.failed],
     ["interrupted", COLORS.interrupted], ["critical path", CRITICAL]].forEach(function (kv) {
      var span = el("span");
      var sw = el("i");
      sw.style.background = kv[1];
      span.appendChild(sw);
      span.appendChild(document.createTextNode(kv[0]));
      legend.appendChild(span);
    });
  }

  // --- shared geometry -----------------------------------------------------------------
  function sizeCanvas(canvas, height) {
    var width = Math.max(canvas.parentNode.clientWidth, 480);
    var ratio = window.devicePixelRatio || 1;
    canvas.style.height = height + "px";
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return { ctx: ctx, width: width, scale: (width - GUTTER - RIGHT) / wall };
  }

  function niceStep(span, pixels) {
    var raw = span / Math.max(pixels / 110, 1);
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = raw / p;
    return p * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10);
  }

  // A tick label: m:ss past a minute, else seconds or milliseconds with the decimals the
  // step needs.
  function tickLabel(us, step) {
    if (us === 0) return "0";
    var decimals = function (unit) { return Math.max(0, -Math.floor(Math.log10(step / unit) + 1e-9)); };
    if (wall >= 6e7) {
      var m = Math.floor(us / 6e7), sec = (us - m * 6e7) / 1e6;
      return m + ":" + (sec < 10 ? "0" : "") + sec.toFixed(decimals(1e6));
    }
    if (wall >= 1e6) return (us / 1e6).toFixed(decimals(1e6)) + " s";
    return (us / 1e3).toFixed(decimals(1e3)) + " ms";
  }

  function timeAxis(g, top, bottom) {
    var ctx = g.ctx;
    var step = niceStep(wall, g.width - GUTTER - RIGHT);
    ctx.fillStyle = "#5f6878";
    ctx.strokeStyle = "#e6e9ee";
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    for (var t = 0; t <= wall + 1; t += step) {
      var x = GUTTER + t * g.scale;
      var label = tickLabel(t, step);
      ctx.fillRect(x, top - 4, 1, 4);
      if (x + ctx.measureText(label).width / 2 <= g.width) ctx.fillText(label, x, top - 8);
      ctx.beginPath();
      ctx.moveTo(x + 0.5, top);
      ctx.lineTo(x + 0.5, bottom);
      ctx.stroke();
    }
  }

  // --- the timeline --------------------------------------------------------------------
  function laneHeight() { return lanes <= 48 ? 18 : Math.max(3, Math.floor(860 / lanes)); }

  function drawTimeline() {
    var lh = laneHeight();
    var canvas = document.getElementById("timeline");
    var g = sizeCanvas(canvas, AXIS + lanes * lh + 6);
    var ctx = g.ctx;
    var cols = Math.ceil(g.width);
    timeAxis(g, AXIS, AXIS + lanes * lh);
    var bars = 0, rects = 0;
    ctx.textAlign = "right";
    ctx.font = "11px system-ui, sans-serif";
    for (var lane = 0; lane < lanes; lane++) {
      var y = AXIS + lane * lh;
      if (lh >= 11) {
        ctx.fillStyle = "#5f6878";
        ctx.fillText("slot " + (lane + 1), GUTTER - 6, y + lh - 5);
      }
      // Sub-pixel bars merge per pixel column: the column takes the highest-ranked outcome.
      var merged = new Uint8Array(cols), mergedCritical = new Uint8Array(cols);
      byLane[lane].forEach(function (i) {
        var s = spans[i];
        var x0 = GUTTER + s.s * g.scale, x1 = GUTTER + s.e * g.scale;
        bars++;
        if (x1 - x0 < 1.5) {
          var c = Math.min(cols - 1, Math.floor(x0));
          merged[c] = Math.max(merged[c], RANK[s.o] || 2);
          if (critical[i]) mergedCritical[c] = 1;
          return;
        }
        ctx.fillStyle = COLORS[s.o] || COLORS.built;
        ctx.fillRect(x0, y + 1, x1 - x0, lh - 2);
        rects++;
        s.w.forEach(function (w) {
          var wx0 = GUTTER + w[0] * g.scale, wx1 = GUTTER + w[1] * g.scale;
          if (wx1 - wx0 < 1) return;
          ctx.fillStyle = "rgba(255,255,255,0.6)";
          ctx.fillRect(wx0, y + 1, wx1 - wx0, lh - 2);
          ctx.fillStyle = COLORS[s.o] || COLORS.built;
          for (var hx = wx0; hx < wx1; hx += 6) ctx.fillRect(hx, y + 1, 1, lh - 2);
        });
        if (critical[i] || i === selected) {
          ctx.strokeStyle = i === selected ? "#1d2330" : CRITICAL;
          ctx.lineWidth = lh >= 8 ? 2 : 1;
          ctx.strokeRect(x0 + 1, y + 2, Math.max(x1 - x0 - 2, 1), lh - 4);
        }
      });
      for (var c0 = 0; c0 < cols; ) {
        var rank = merged[c0];
        if (!rank) { c0++; continue; }
        var c1 = c0 + 1;
        while (c1 < cols && merged[c1] === rank) c1++;
        ctx.fillStyle = COLORS[BY_RANK[rank]];
        ctx.fillRect(c0, y + 1, c1 - c0, lh - 2);
        rects++;
        c0 = c1;
      }
      ctx.fillStyle = CRITICAL;
      for (var k = 0; k < cols; k++) if (mergedCritical[k]) ctx.fillRect(k, y, 1, 2);
    }
    criticalLinks(ctx, g, lh);
    document.body.setAttribute("data-bars", String(bars));
    document.body.setAttribute("data-rects", String(rects));
  }

  // A line from each critical target's end to the start of the next one.
  function criticalLinks(ctx, g, lh) {
    ctx.strokeStyle = CRITICAL;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (var k = 1; k < D.critical.length; k++) {
      var a = spans[D.critical[k - 1]], b = spans[D.critical[k]];
      ctx.moveTo(GUTTER + a.e * g.scale, AXIS + a.l * lh + lh / 2);
      ctx.lineTo(GUTTER + Math.max(b.s, a.e) * g.scale, AXIS + b.l * lh + lh / 2);
    }
    ctx.stroke();
  }

  // The span under (x, y) on the timeline, or -1: the last one on that lane starting before
  // x, or the next one when within 3 pixels.
  function hit(x, y) {
    var canvas = document.getElementById("timeline");
    var lh = laneHeight();
    var lane = Math.floor((y - AXIS) / lh);
    if (lane < 0 || lane >= lanes) return -1;
    var scale = (canvas.clientWidth - GUTTER - RIGHT) / wall;
    var t = (x - GUTTER) / scale, slack = 3 / scale;
    var list = byLane[lane], lo = 0, hi = list.length - 1, found = -1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (spans[list[mid]].s <= t + slack) { found = mid; lo = mid + 1; } else hi = mid - 1;
    }
    for (var k = found; k >= 0 && k >= found - 1; k--) {
      var s = spans[list[k]];
      if (s.s - slack <= t && t <= s.e + slack) return list[k];
    }
    return -1;
  }

  function wireTimeline() {
    var canvas = document.getElementById("timeline");
    var tip = document.getElementById("tip");
    function at(ev) {
      var r = canvas.getBoundingClientRect();
      return hit(ev.clientX - r.left, ev.clientY - r.top);
    }
    canvas.addEventListener("mousemove", function (ev) {
      var i = at(ev);
      if (i < 0) { tip.hidden = true; canvas.style.cursor = ""; return; }
      var r = canvas.getBoundingClientRect();
      tip.textContent = details(i);
      tip.hidden = false;
      canvas.style.cursor = "pointer";
      var x = ev.clientX - r.left + 14;
      tip.style.left = Math.min(x, Math.max(r.width - tip.offsetWidth - 4, 0)) + "px";
      tip.style.top = (ev.clientY - r.top + 14) + "px";
    });
    canvas.addEventListener("mouseleave", function () { tip.hidden = true; });
    canvas.addEventListener("click", function (ev) {
      var i = at(ev);
      if (i >= 0) select(i);
    });
  }

  // --- jobs over time ------------------------------------------------------------------
  function drawJobs() {
    var height = 170, top = AXIS + 16, bottom = height - 8;
    var canvas = document.getElementById("jobs");
    var g = sizeCanvas(canvas, height);
    var ctx = g.ctx;
    var limit = D.jobs === null ? 0 : D.jobs;
    var ymax = Math.max(D.peak, limit, 1);
    var yOf = function (n) { return bottom - (bottom - top) * n / ymax; };
    timeAxis(g, AXIS, bottom);
    ctx.fillStyle = "#5f6878";
    ctx.textAlign = "right";
    ctx.fillText(String(ymax), GUTTER - 6, top + 8);
    ctx.fillText("0", GUTTER - 6, bottom);
    ctx.beginPath();
    ctx.moveTo(GUTTER, bottom);
    D.curve.forEach(function (p, k) {
      var x = GUTTER + p[0] * g.scale;
      if (k > 0) ctx.lineTo(x, yOf(D.curve[k - 1][1]));
      ctx.lineTo(x, yOf(p[1]));
    });
    ctx.lineTo(GUTTER + wall * g.scale, yOf(D.curve[D.curve.length - 1][1]));
    ctx.lineTo(GUTTER + wall * g.scale, bottom);
    ctx.closePath();
    ctx.fillStyle = "rgba(59,125,216,0.35)";
    ctx.fill();
    ctx.strokeStyle = "#3b7dd8";
    ctx.lineWidth = 1;
    ctx.stroke();
    if (limit) {
      ctx.strokeStyle = "#d93a3a";
      ctx.setLineDash([6, 4]);
      ctx.beginPath();
      ctx.moveTo(GUTTER, yOf(limit));
      ctx.lineTo(g.width - RIGHT, yOf(limit));
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.fillStyle = "#d93a3a";
      ctx.textAlign = "left";
      ctx.fillText("-j " + limit, GUTTER + 4, yOf(limit) - 3);
    }
    document.getElementById("jobs-summary").textContent = "Peak " + D.peak + " job(s), " +
      D.average.toFixed(2) + " on average, against -j " + jobsText() + ". Time spent waiting for a job token: " +
      fmt(D.token_wait) + " in all.";
  }

  // --- critical path list --------------------------------------------------------------
  function criticalList() {
    var ol = document.getElementById("critical");
    if (!D.critical.length) { ol.appendChild(el("li", "(no targets ran)")); return; }
    D.critical.forEach(function (i) {
      var li = el("li");
      li.appendChild(el("span", spans[i].t, "o-" + spans[i].o));
      li.appendChild(el("span", fmt(spans[i].e - spans[i].s) + ", " + spans[i].o, "dur"));
      li.addEventListener("click", function () { select(i); });
      ol.appendChild(li);
    });
  }

  // --- the table of slowest targets ----------------------------------------------------
  var rows = [], sortKey = "dur", sortDesc = true;

  function cell(key, i) {
    var s = spans[i];
    return key === "dur" ? s.e - s.s : key === "d" ? (s.d || "") : s[key];
  }

  function tableRows() {
    var order = spans.map(function (_, i) { return i; });
    order.sort(function (a, b) { return (spans[b].e - spans[b].s) - (spans[a].e - spans[a].s); });
    rows = order.slice(0, D.table_rows);
    document.getElementById("table-note").textContent = (spans.length > rows.length ?
      "The " + rows.length + " slowest of " + spans.length + " target runs (the table stops at " + D.table_rows + ")." :
      "All " + spans.length + " target runs.") + " Click a column to sort by it.";
    fillTable();
    Array.prototype.forEach.call(document.querySelectorAll("#slowest th"), function (th) {
      th.addEventListener("click", function () {
        var key = th.getAttribute("data-key");
        sortDesc = key === sortKey ? !sortDesc : (key === "dur" || key === "q");
        sortKey = key;
        fillTable();
      });
    });
  }

  function fillTable() {
    rows.sort(function (a, b) {
      var x = cell(sortKey, a), y = cell(sortKey, b);
      var c = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
      return sortDesc ? -c : c;
    });
    var body = document.querySelector("#slowest tbody");
    var frag = document.createDocumentFragment();
    rows.forEach(function (i) {
      var s = spans[i], tr = el("tr");
      tr.appendChild(el("td", s.t, "name"));
      tr.appendChild(el("td", fmt(s.e - s.s), "num"));
      tr.appendChild(el("td", fmt(s.q), "num"));
      tr.appendChild(el("td", s.o + (critical[i] ? " (critical)" : ""), "o-" + s.o));
      tr.appendChild(el("td", s.d === null ? "" : s.d, "name"));
      tr.appendChild(el("td", String(s.l + 1), "num"));
      tr.appendChild(el("td", fmt(s.s), "num"));
      tr.addEventListener("click", function () { select(i); });
      frag.appendChild(tr);
    });
    body.textContent = "";
    body.appendChild(frag);
    Array.prototype.forEach.call(document.querySelectorAll("#slowest th"), function (th) {
      var key = th.getAttribute("data-key");
      th.classList.toggle("sorted-desc", key === sortKey && sortDesc);
      th.classList.toggle("sorted-asc", key === sortKey && !sortDesc);
    });
  }

  // Hooks for the browser tests, which cannot move a mouse, read from the URL's fragment:
  // "probe=LANE,MICROS" moves the pointer over that point of the timeline and clicks it;
  // "sort=KEY" clicks that column's heading.
  function probe() {
    var m = /probe=(\d+),(\d+)/.exec(location.hash);
    if (m) {
      var canvas = document.getElementById("timeline"), r = canvas.getBoundingClientRect();
      var scale = (canvas.clientWidth - GUTTER - RIGHT) / wall;
      var at = { bubbles: true, clientX: r.left + GUTTER + Number(m[2]) * scale,
        clientY: r.top + AXIS + (Number(m[1]) + 0.5) * laneHeight() };
      canvas.dispatchEvent(new MouseEvent("mousemove", at));
      canvas.dispatchEvent(new MouseEvent("click", at));
    }
    var key = /sort=(\w+)/.exec(location.hash);
    var th = key && document.querySelector('#slowest th[data-key="' + key[1] + '"]');
    if (th) th.click();
  }

  header();
  drawTimeline();
  wireTimeline();
  criticalList();
  drawJobs();
  tableRows();
  probe();
  var resizeTimer = 0;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { drawTimeline(); drawJobs(); }, 100);
  });
  if (document.body.getAttribute("data-status") === "loading") {
    document.body.setAttribute("data-status", "ok");
  }
  document.body.setAttribute("data-render-ms", performance.now().toFixed(1));
})();
