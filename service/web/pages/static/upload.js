// Progressive enhancement of the upload form: drag and drop, one request per image with a
// progress bar. Without JavaScript the same form posts all images at once.
(function () {
  var form = document.getElementById("upload");
  if (!form || !window.FormData || !window.XMLHttpRequest) { return; }
  var input = document.getElementById("images");
  var list = document.getElementById("progress");

  form.addEventListener("dragover", function (e) { e.preventDefault(); form.classList.add("dragging"); });
  form.addEventListener("dragleave", function () { form.classList.remove("dragging"); });
  form.addEventListener("drop", function (e) {
    e.preventDefault();
    form.classList.remove("dragging");
    send(Array.prototype.slice.call(e.dataTransfer.files));
  });
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    send(Array.prototype.slice.call(input.files));
  });

  function send(files) {
    var pending = files.length;
    files.forEach(function (file) {
      var item = document.createElement("li");
      var bar = document.createElement("progress");
      bar.max = 100; bar.value = 0;
      bar.setAttribute("aria-label", file.name);
      var label = document.createElement("span");
      label.textContent = file.name;
      item.appendChild(bar); item.appendChild(label);
      list.appendChild(item);
      var data = new FormData();
      data.append("csrf", form.elements.csrf.value);
      data.append("images", file, file.name);
      if (form.elements.public.checked) { data.append("public", "on"); }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); }
      });
      xhr.addEventListener("load", function () {
        bar.value = 100;
        if (xhr.status === 200) {
          var made = JSON.parse(xhr.responseText).receipts[0];
          var link = document.createElement("a");
          link.href = made.url; link.textContent = " → " + made.id;
          item.appendChild(link);
          item.className = "done";
        } else {
          item.appendChild(document.createTextNode(" ✗ " + xhr.status));
          item.className = "failed";
        }
        pending -= 1;
        if (pending === 0) { list.dataset.done = "true"; }
      });
      xhr.send(data);
    });
  }
})();
