// The analytics dashboard's charts, drawn from the JSON the page embeds (no inline script).
document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("analytics-chart-data");
  if (!source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const options = {
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: "index", intersect: false },
  };
  const revenue = document.getElementById("revenue-chart");
  if (revenue) {
    new Chart(revenue, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: data.revenue.labels[0], data: data.revenue.members, backgroundColor: "#0172ad" },
          { label: data.revenue.labels[1], data: data.revenue.anonymous, backgroundColor: "#9fb3c8" },
        ],
      },
      options: { ...options, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });
  }
  const points = document.getElementById("points-chart");
  if (points) {
    new Chart(points, {
      type: "line",
      data: {
        labels: data.labels,
        datasets: [
          { label: data.points.labels[0], data: data.points.issued, borderColor: "#0172ad", backgroundColor: "#0172ad", tension: 0.2 },
          { label: data.points.labels[1], data: data.points.redeemed, borderColor: "#2e7d32", backgroundColor: "#2e7d32", tension: 0.2 },
          { label: data.points.labels[2], data: data.points.expired, borderColor: "#c62828", backgroundColor: "#c62828", tension: 0.2 },
        ],
      },
      options: { ...options, scales: { y: { beginAtZero: true } } },
    });
  }
});
