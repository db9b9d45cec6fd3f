// The console's scene editor: draw and edit a camera's zones, lines, lamp boxes and calibration
// points on its reference frame with the mouse; every change is checked by central with the edge's
// own validation (the errors `check-config` prints); Save stores a new version (never overwrites).
// Plain JS, no dependencies: the console's CSP allows only its own scripts.
"use strict";
(function () {
  const root = document.getElementById("editor-root");
  const node = root.dataset.node, camera = root.dataset.camera, csrf = root.dataset.csrf;
  const api = "/api/scenes/" + encodeURIComponent(node) + "/" + encodeURIComponent(camera);
  const svg = document.getElementById("canvas"), img = document.getElementById("frame");
  const NS = "http://www.w3.org/2000/svg";
  let cfg = null, baseVersion = null, frameSha = null, tool = "select", draft = [], drag = null, checkTimer = null, lastOk = false;

  const $ = (id) => document.getElementById(id);
  const scene = () => cfg.scene;
  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    (parent || svg).appendChild(e);
    return e;
  }
  // Mouse position in reference-frame pixels (the scene's coordinates), whatever the display size.
  function point(ev) {
    const p = svg.createSVGPoint();
    p.x = ev.clientX; p.y = ev.clientY;
    const q = p.matrixTransform(svg.getScreenCTM().inverse());
    const [w, h] = scene().reference_size;
    return [Math.max(0, Math.min(w, Math.round(q.x))), Math.max(0, Math.min(h, Math.round(q.y)))];
  }
  function freshId(prefix, list) {
    const typed = $("new-id").value.trim();
    if (typed && !list.some((x) => x.id === typed)) { $("new-id").value = ""; return typed; }
    let i = list.length + 1;
    while (list.some((x) => x.id === prefix + i)) i++;
    return prefix + i;
  }
  function head(id) {
    let h = scene().signals.find((s) => s.id === id);
    if (!h) { h = { id: id, lamps: [] }; scene().signals.push(h); }
    h.lamps = h.lamps || [];
    return h;
  }

  // ---------------------------------------------------------------------------------- drawing
  function render() {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const [w, h] = scene().reference_size;
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    const defs = el("defs", {});
    const m = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "5", markerHeight: "5", orient: "auto" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z", fill: "#00e0ff" }, m);
    scene().zones.forEach((z, zi) => {
      el("polygon", { class: "zone", points: z.polygon.map((p) => p.join(",")).join(" "), "data-zone": z.id });
      const c = z.polygon[0];
      el("text", { x: c[0] + 6, y: c[1] + 22 }).textContent = z.id + " (" + z.kind + ")";
      z.polygon.forEach((p, pi) => handle(p, ["zones", zi, "polygon", pi]));
    });
    scene().lines.forEach((l, li) => {
      const [a, b] = l.points;
      el("line", { class: "line", x1: a[0], y1: a[1], x2: b[0], y2: b[1], "marker-end": "url(#arrow)", "data-line": l.id });
      el("text", { x: a[0] + 6, y: a[1] - 8 }).textContent = l.id;
      l.points.forEach((p, pi) => handle(p, ["lines", li, "points", pi]));
    });
    scene().signals.forEach((s, si) => (s.lamps || []).forEach((lamp, ki) => {
      const [x1, y1, x2, y2] = lamp.box;
      el("rect", { class: "lamp " + lamp.color, x: Math.min(x1, x2), y: Math.min(y1, y2), width: Math.abs(x2 - x1), height: Math.abs(y2 - y1) });
      handle([x1, y1], ["signals", si, "lamps", ki, "box", 0]);
      handle([x2, y2], ["signals", si, "lamps", ki, "box", 2]);
    }));
    const cal = scene().calibration;
    if (cal) cal.image_points.forEach((p, i) => {
      el("circle", { class: "calib", cx: p[0], cy: p[1], r: 7 });
      handle(p, ["calibration", null, "image_points", i]);
    });
    if (draft.length) {
      if (tool === "zone") el("polyline", { class: "zone draft", points: draft.map((p) => p.join(",")).join(" ") });
      draft.forEach((p) => el("circle", { class: "handle", cx: p[0], cy: p[1], r: 5 }));
    }
    listItems();
  }
  function handle(p, path) {
    const c = el("circle", { class: "handle", cx: p[0], cy: p[1], r: 6 });
    c.dataset.path = JSON.stringify(path);
  }
  function setAt(path, xy) {
    const [list, i, key, j, key2, k] = path;
    if (list === "calibration") { scene().calibration.image_points[j] = xy; return; }
    const item = scene()[list][i];
    if (list === "signals") { item.lamps[j].box[k] = xy[0]; item.lamps[j].box[k + 1] = xy[1]; return; }
    item[key][j] = xy;
  }
  function listItems() {
    const ul = $("items");
    ul.innerHTML = "";
    const add = (text, remove, extra) => {
      const li = document.createElement("li");
      li.textContent = text + " ";
      if (extra) li.appendChild(extra);
      const b = document.createElement("button");
      b.type = "button"; b.textContent = "xoá / delete";
      b.addEventListener("click", () => { remove(); changed(); });
      li.appendChild(b);
      ul.appendChild(li);
    };
    scene().zones.forEach((z, i) => {
      // The kind of a drawn zone can be changed in place (what its rule watches for).
      const kind = $("zone-kind").cloneNode(true);
      kind.removeAttribute("id");
      kind.dataset.zoneKind = z.id;
      kind.value = z.kind;
      kind.addEventListener("change", () => { z.kind = kind.value; changed(); });
      add("zone " + z.id + " (" + z.polygon.length + " points)", () => scene().zones.splice(i, 1), kind);
    });
    scene().lines.forEach((l, i) => {
      const r = document.createElement("button");
      r.type = "button"; r.textContent = "đảo hướng / reverse";
      r.addEventListener("click", () => { l.points.reverse(); changed(); });
      add("line " + l.id + " " + JSON.stringify(l.points), () => scene().lines.splice(i, 1), r);
    });
    scene().signals.forEach((s) => (s.lamps || []).forEach((lamp, k) =>
      add("lamp " + s.id + "/" + lamp.color + (lamp.arrow ? " arrow " + lamp.arrow : "") + " " + JSON.stringify(lamp.box), () => s.lamps.splice(k, 1))));
    if (scene().calibration) add("calibration (4 points)", () => { delete scene().calibration; });
  }

  // ----------------------------------------------------------------------------------- mouse
  svg.addEventListener("mousedown", (ev) => {
    ev.preventDefault();
    const p = point(ev);
    if (ev.target.dataset && ev.target.dataset.path) { drag = { path: JSON.parse(ev.target.dataset.path) }; return; }
    if (tool === "lamp") drag = { lamp: [p[0], p[1], p[0], p[1]], head: head($("head-id").value.trim() || "main") };
  });
  svg.addEventListener("mousemove", (ev) => {
    const p = point(ev);
    $("coords").textContent = "x " + p[0] + ", y " + p[1];
    if (!drag) return;
    if (drag.path) { setAt(drag.path, p); render(); }
    else if (drag.lamp) { drag.lamp[2] = p[0]; drag.lamp[3] = p[1]; render(); el("rect", { class: "lamp", x: Math.min(drag.lamp[0], p[0]), y: Math.min(drag.lamp[1], p[1]), width: Math.abs(p[0] - drag.lamp[0]), height: Math.abs(p[1] - drag.lamp[1]) }); }
  });
  window.addEventListener("mouseup", (ev) => {
    if (!drag) return;
    const d = drag; drag = null;
    if (d.lamp) {
      const [x1, y1, x2, y2] = d.lamp;
      if (Math.abs(x2 - x1) >= 2 && Math.abs(y2 - y1) >= 2) {
        const lamp = { color: $("lamp-color").value, box: [Math.min(x1, x2), Math.min(y1, y2), Math.max(x1, x2), Math.max(y1, y2)] };
        // A green arrow lets its movement go on a red ball; check-config refuses an arrow on another colour.
        if ($("lamp-arrow").value) lamp.arrow = $("lamp-arrow").value;
        d.head.lamps.push(lamp);
      }
    }
    changed();
  });
  svg.addEventListener("click", (ev) => {
    if (tool === "select" || tool === "lamp" || (ev.target.dataset && ev.target.dataset.path)) return;
    draft.push(point(ev));
    if (tool === "line" && draft.length === 2) {
      scene().lines.push({ id: freshId("line", scene().lines), points: [draft[0], draft[1]] });
      draft = []; changed(); return;
    }
    if (tool === "calib" && draft.length === 4) {
      const ground = $("ground").value.split(";").map((s) => s.split(",").map(Number));
      scene().calibration = { image_points: draft, ground_points_m: ground };
      draft = []; changed(); return;
    }
    render();
  });
  function finishZone() {
    // A double click also clicked twice: drop the repeated points it added.
    draft = draft.filter((p, i) => i === 0 || p[0] !== draft[i - 1][0] || p[1] !== draft[i - 1][1]);
    if (tool !== "zone" || draft.length < 3) return;
    scene().zones.push({ id: freshId("zone", scene().zones), kind: $("zone-kind").value, polygon: draft });
    draft = []; changed();
  }
  $("finish").addEventListener("click", finishZone);
  svg.addEventListener("dblclick", finishZone);
  document.querySelectorAll("[data-tool]").forEach((b) => b.addEventListener("click", () => {
    tool = b.dataset.tool; draft = [];
    document.querySelectorAll("[data-tool]").forEach((o) => o.classList.toggle("on", o === b));
    render();
  }));

  // ---------------------------------------------------------------------------- check, save
  function post(url, body) {
    return fetch(url, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body) })
      .then((r) => r.json().then((j) => ({ status: r.status, body: j })));
  }
  function changed() {
    render();
    lastOk = false;
    $("save").disabled = true;
    $("check-state").textContent = "…";
    clearTimeout(checkTimer);
    checkTimer = setTimeout(check, 250);
  }
  function showErrors(errors) {
    const ul = $("errors");
    ul.innerHTML = "";
    (errors || []).forEach((e) => { const li = document.createElement("li"); li.textContent = e; ul.appendChild(li); });
  }
  function check() {
    const sent = JSON.stringify(cfg);
    return post(api + "/check", { config: cfg }).then((r) => {
      if (JSON.stringify(cfg) !== sent) return; // changed meanwhile: a newer check follows
      $("yaml").textContent = r.body.yaml || "";
      showErrors(r.body.errors || (r.body.detail ? [String(r.body.detail)] : []));
      lastOk = r.status === 200 && r.body.ok;
      $("check-state").textContent = lastOk ? "ok" : "lỗi / errors";
      $("check-state").className = "badge " + (lastOk ? "confirmed" : "overdue");
      $("save").disabled = !lastOk;
    });
  }
  $("save").addEventListener("click", () => {
    $("save").disabled = true;
    // The frame shown is the picture the scene is drawn on: the node takes it as its reference.
    post(api + "/versions", { config: cfg, base_version: baseVersion, frame_sha256: frameSha }).then((r) => {
      if (r.status === 201) {
        baseVersion = r.body.version;
        $("saved").textContent = "Đã lưu v" + r.body.version + " (" + r.body.created_by + ", " + r.body.created_at + "): chờ node áp dụng / saved, waiting for the node";
        $("saved").dataset.version = r.body.version;
      } else {
        showErrors(r.body.errors || [String(r.body.detail)]);
        $("saved").textContent = "Không lưu / not saved (" + r.status + ")";
        $("save").disabled = false;
      }
    });
  });

  fetch(api, { credentials: "same-origin" }).then((r) => r.json()).then((data) => {
    cfg = data.config;
    baseVersion = data.version;
    const s = cfg.scene;
    s.zones = s.zones || []; s.lines = s.lines || []; s.signals = s.signals || [];
    frameSha = data.frame_sha256 || null;
    if (data.frame) img.src = data.frame;
    else img.src = "/scenes/" + encodeURIComponent(node) + "/" + encodeURIComponent(camera) + "/drawing.png";
    img.addEventListener("load", () => { render(); root.dataset.ready = "1"; }, { once: true });
    check();
  });
})();
