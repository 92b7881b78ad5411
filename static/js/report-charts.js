// Charts of the analytics report pages (liability, ROI), drawn from the JSON each page embeds
// with json_script: {"id": canvas id, "type": "bar" | "line", "labels": [...], "datasets":
// [{"label", "data", "color"}]} under #report-charts (a list), no inline script.
document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("report-charts");
  if (!source || typeof Chart === "undefined") return;
  for (const chart of JSON.parse(source.textContent)) {
    const canvas = document.getElementById(chart.id);
    if (!canvas) continue;
    new Chart(canvas, {
      type: chart.type,
      data: {
        labels: chart.labels,
        datasets: chart.datasets.map((set) => ({
          label: set.label, data: set.data, borderColor: set.color, backgroundColor: set.color, tension: 0.2,
        })),
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: { y: { beginAtZero: true } },
      },
    });
  }
});
