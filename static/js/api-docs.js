// Swagger UI draws the operation groups as <h3> under its <h1> title: give them level 2, so
// that screen readers (and axe-core's heading-order) see no skipped level. Swagger UI redraws
// when a group opens, hence the observer.
function levelTagHeadings() {
  for (const heading of document.querySelectorAll(".swagger-ui h3.opblock-tag")) {
    if (heading.getAttribute("aria-level") !== "2") heading.setAttribute("aria-level", "2");
  }
}
new MutationObserver(levelTagHeadings).observe(document.body, { childList: true, subtree: true });
