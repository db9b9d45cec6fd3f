// Charts of the dashboard (Chart.js, served by central): the numbers are also in the tables below
// each chart, so the page reads the same without script.
(function () {
  "use strict";
  const d = JSON.parse(document.getElementById("dashboard-data").textContent);
  const palette = ["#0b5cad", "#e6a100", "#1d6b32", "#a4161a", "#7b2cbf", "#00838f", "#5d6b7e", "#c2185b"];
  Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
  Chart.defaults.animation = false;
  // Long agency names would squeeze the bars: the axis gets a short form, the table the whole name.
  const short = (s) => (s && s.length > 30 ? s.slice(0, 29) + "…" : s);  // an operations-center wall screen: no motion on every refresh

  new Chart(document.getElementById("chart-trend"), {
    type: "bar",  // reports per day, stacked by category
    data: {
      labels: d.trend.days,
      datasets: d.trend.series.map((s, i) => ({
        label: s.vi + " / " + s.en, data: s.counts, backgroundColor: palette[i % palette.length],
      })),
    },
    options: {scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true, ticks: {precision: 0}}}},
  });
  for (const key of ["by_type", "by_status", "by_ward", "by_agency"]) {
    const rows = d[key];
    const canvas = document.getElementById("chart-" + key);
    if (!rows.length) { canvas.remove(); continue; }
    new Chart(canvas, {
      type: "bar",
      data: {labels: rows.map((r) => short(r.vi)), datasets: [{label: "reports", data: rows.map((r) => r.count), backgroundColor: palette[0]}]},
      options: {indexAxis: "y", plugins: {legend: {display: false}}, scales: {x: {beginAtZero: true, ticks: {precision: 0}}}},
    });
  }
  document.body.setAttribute("data-charts", "ready");
})();
