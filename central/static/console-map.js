// The console's map: cameras and open reports from /api/map, ward labels at their centroids.
// Tiles only when the deployer configured a tile server (map.tile_url); otherwise a plain
// background, so the map works on an operations-center network without Internet.
(function () {
  "use strict";
  const el = document.getElementById("map");
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

  fetch("/api/map", {credentials: "same-origin"}).then((r) => {
    if (!r.ok) throw new Error("HTTP " + r.status);
    return r.json();
  }).then(draw).catch((e) => {
    el.textContent = "Không tải được bản đồ / the map could not be loaded: " + e.message;
  });

  function draw(data) {
    const cfg = data.settings;
    const map = L.map(el, {maxZoom: cfg.max_zoom}).setView(cfg.center, cfg.zoom);
    if (cfg.tile_url) {
      L.tileLayer(cfg.tile_url, {maxZoom: cfg.max_zoom, attribution: esc(cfg.attribution)}).addTo(map);
    } else {
      el.classList.add("no-tiles");
      map.attributionControl.setPrefix("Leaflet");
    }
    const points = [];
    for (const w of data.wards) {
      L.marker([w.lat, w.lon], {
        interactive: false, keyboard: false,
        icon: L.divIcon({className: "ward-label", html: esc(w.name) + (w.open_reports ? " (" + w.open_reports + ")" : ""), iconSize: null}),
      }).addTo(map);
    }
    for (const c of data.cameras) {
      const m = L.circleMarker([c.lat, c.lon], {
        radius: 9, weight: 2, color: "#fff", fillOpacity: 0.95, fillColor: c.state === "unknown" ? "#8a96a6" : c.healthy ? "#1d6b32" : "#a4161a",
      }).addTo(map);
      m.bindTooltip(esc(c.name || c.camera) + " · " + esc(c.state) + (c.camera_moved ? " · camera bị lệch / moved" : ""));
      m.on("click", () => { window.location.href = c.url; });
      m.getElement().setAttribute("data-camera", c.node + "/" + c.camera);
      points.push([c.lat, c.lon]);
    }
    for (const r of data.reports) {
      const m = L.circleMarker([r.lat, r.lon], {
        radius: 6, weight: 1, color: "#5d4100", fillOpacity: 0.9, fillColor: r.overdue ? "#7b2cbf" : "#e6a100",
      }).addTo(map);
      m.bindTooltip("#" + r.id + " " + esc(r.title_vi) + (r.ward ? " · " + esc(r.ward) : ""));
      m.on("click", () => { window.location.href = r.url; });
      m.getElement().setAttribute("data-report", String(r.id));
      points.push([r.lat, r.lon]);
    }
    if (points.length) map.fitBounds(points, {padding: [40, 40], maxZoom: 17});
    document.getElementById("map-summary").textContent =
      data.cameras.length + " camera · " + data.reports.length + " open reports";
    if (data.truncated) {
      document.getElementById("map-note").textContent = "Chỉ hiện các phản ánh mới nhất / only the newest open reports are shown.";
    }
    el.setAttribute("data-ready", "1");
  }
})();
