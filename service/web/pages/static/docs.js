// Starts Swagger UI on /docs (a file, not an inline script: the pages' CSP runs no inline code).
window.addEventListener("DOMContentLoaded", function () {
  var target = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({ url: target.dataset.url, domNode: target, deepLinking: true });
});
