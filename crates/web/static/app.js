// medgrid — small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  // Ask before destructive actions (disable an account, revoke a token).
  document.addEventListener("submit", function (ev) {
    var button = ev.submitter;
    var question = button && button.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      ev.preventDefault();
    }
  });
  // Filter the organisation tree by name, keeping the ancestors of every match visible.
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("tree-filter");
    if (!box) { return; }
    box.addEventListener("input", function () {
      var q = box.value.trim();
      var items = document.querySelectorAll("ul.tree li.unit");
      items.forEach(function (li) { li.classList.remove("hidden"); });
      if (!q) { return; }
      items.forEach(function (li) {
        if (li.textContent.indexOf(q) < 0) { li.classList.add("hidden"); }
      });
    });
  });
})();
