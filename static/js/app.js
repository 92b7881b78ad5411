// Small behaviours kept out of templates so the Content-Security-Policy needs no 'unsafe-inline'.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (button && navigator.clipboard) {
    navigator.clipboard.writeText(button.dataset.copy);
  }
});
