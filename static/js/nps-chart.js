// NPS by month with its 95% interval, drawn from the JSON the page embeds (no inline script).
document.addEventListener("DOMContentLoaded", () => {
  const canvas = document.getElementById("nps-chart");
  const source = document.getElementById("nps-chart-data");
  if (!canvas || !source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const band = "rgba(1,114,173,0.35)";
  new Chart(canvas, {
    type: "line",
    data: {
      labels: data.labels,
      datasets: [
        { label: data.label, data: data.nps, borderColor: "#0172ad", backgroundColor: "#0172ad", tension: 0.2 },
        { label: "95%", data: data.high, borderColor: band, borderDash: [4, 4], pointRadius: 0 },
        { label: "", data: data.low, borderColor: band, borderDash: [4, 4], pointRadius: 0 },
      ],
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      scales: { y: { min: -100, max: 100 } },
      plugins: { legend: { labels: { filter: (item) => item.text !== "" } } },
    },
  });
});
