// The police view, live: one EventSource on /api/alerts/stream (no polling), a short tone and a
// browser notification for each new alert, and "Nhận / Acknowledge" with who and when.
(() => {
  "use strict";
  const root = document.getElementById("alerts-live");
  if (!root) return;
  const csrf = root.dataset.csrf;
  const rows = document.getElementById("alert-rows");
  const state = document.getElementById("live-state");
  const seen = new Set();
  let primed = false;  // the backlog a fresh stream starts with rings no bell
  let audio = null;

  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

  // A short two-tone chime made here (Web Audio): no sound file to ship or download.
  function chime() {
    if (!audio || audio.state !== "running") return;
    const t = audio.currentTime;
    [[880, 0], [660, 0.18]].forEach(([hz, dt]) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = hz;
      gain.gain.setValueAtTime(0.0001, t + dt);
      gain.gain.exponentialRampToValueAtTime(0.3, t + dt + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + dt + 0.16);
      osc.connect(gain).connect(audio.destination);
      osc.start(t + dt);
      osc.stop(t + dt + 0.17);
    });
    root.dataset.chimes = String(Number(root.dataset.chimes || 0) + 1);
  }

  function notify(a) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const n = new Notification(`#${a.report_id} ${a.title ? a.title.vi : a.type}`, {
      body: [a.plate ? "Biển số " + a.plate : "", a.place ? (a.place.address || a.place.ward || "") : ""].filter(Boolean).join(" · "),
      tag: "alert-" + a.id,
    });
    n.onclick = () => { window.focus(); location.href = "/reports/" + a.report_id; };
  }

  function ackCell(a) {
    if (a.acknowledged) {
      return `<span class="ack-done">Đã nhận / acknowledged: <strong>${esc(a.acknowledged.by)}</strong><br><span class="en">${esc(a.acknowledged.vi)}</span></span>`;
    }
    return `<button class="ack" data-id="${esc(a.id)}">Nhận / Acknowledge</button>`;
  }

  function render(a) {
    const wl = a.watch_list;
    const picture = a.composite_url || a.snapshot_url;  // the composite shows the act: first
    const conf = a.plate_confidence == null ? "" : ` <span class="en">(${Math.round(a.plate_confidence * 100)}%)</span>`;
    const tr = document.getElementById("alert-" + a.id) || document.createElement("tr");
    tr.className = (wl ? "alert watch-list" : "alert") + (a.acknowledged ? " acknowledged" : "");
    tr.id = "alert-" + a.id;
    tr.innerHTML = `<td>${picture ? `<img class="thumb" src="${esc(picture)}" alt="">` : ""}</td>` +
      `<td>${a.plate_url ? `<img class="thumb" src="${esc(a.plate_url)}" alt="">` : ""}</td>` +
      `<td><a href="/reports/${esc(a.report_id)}"><strong>#${esc(a.report_id)} ${esc(a.title ? a.title.vi : a.type)}</strong></a><br>` +
      `${esc(a.place ? (a.place.address || a.place.ward || "") : "")}${a.place && a.place.district ? ", " + esc(a.place.district) : ""}<br>` +
      `${wl ? `<span class="badge urgent">DANH SÁCH THEO DÕI / WATCH LIST</span> <span class="watch-note">${esc(wl.note)}</span><br>` : ""}` +
      `${a.plate ? "Biển số: <strong>" + esc(a.plate) + "</strong>" + conf + "<br>" : (a.plate_unreadable ? "Biển số không đọc được / plate unreadable<br>" : "")}` +
      `<span class="en">${esc(a.created ? a.created.vi : a.created_at)}</span></td>` +
      `<td class="ack-cell">${ackCell(a)}</td>`;
    return tr;
  }

  // A new alert is a report newly forwarded to this area: the report table below is fetched
  // again (one request per alert, never on a timer) so it lists it without a reload.
  async function refreshReports() {
    const table = document.getElementById("police-reports");
    if (!table) return;
    const r = await fetch(location.pathname, {credentials: "same-origin"});
    if (!r.ok) return;
    const fresh = new DOMParser().parseFromString(await r.text(), "text/html").getElementById("police-reports");
    if (fresh) table.replaceWith(fresh);
  }

  function add(a) {
    const fresh = !seen.has(a.id);
    seen.add(a.id);
    const tr = render(a);
    if (fresh) rows.prepend(tr);
    document.getElementById("no-alerts").hidden = true;
    if (fresh && primed && !a.acknowledged) { chime(); notify(a); }
    if (fresh && primed && !document.getElementById("report-" + a.report_id)) refreshReports();
  }

  rows.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button.ack");
    if (!button) return;
    button.disabled = true;
    const r = await fetch(`/api/alerts/${button.dataset.id}/ack`, {method: "POST", credentials: "same-origin", headers: {"X-CSRF-Token": csrf}});
    if (r.ok || r.status === 409) {
      const body = await r.json();
      if (r.ok) render(body);
      else button.closest("td").textContent = body.detail || "đã nhận / already acknowledged";
    } else { button.disabled = false; }
  });

  document.getElementById("enable-alerts").addEventListener("click", async () => {
    // Browsers start sound and ask about notifications only after a click.
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    await audio.resume();
    if ("Notification" in window && Notification.permission === "default") await Notification.requestPermission();
    document.getElementById("enable-alerts").textContent = "Âm thanh và thông báo: bật / sound and notifications on";
    chime();
  });

  const source = new EventSource("/api/alerts/stream");
  source.addEventListener("alert", (ev) => add(JSON.parse(ev.data)));
  source.onopen = () => {
    state.textContent = "trực tiếp / live";
    state.className = "badge confirmed";
    setTimeout(() => { primed = true; }, 1500);  // after the backlog
  };
  source.onerror = () => { state.textContent = "mất kết nối, đang nối lại / reconnecting"; state.className = "badge overdue"; };
})();
