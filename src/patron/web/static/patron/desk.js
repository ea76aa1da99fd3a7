// The service desk's small behaviours: SLA countdowns, keyboard shortcuts, suggested answers.
(function () {
  "use strict";
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".sla-countdown[data-due]").forEach(function (el) {
      var due = Date.parse(el.dataset.due);
      if (isNaN(due)) { return; }
      var left = Math.round((due - now) / 1000);
      var sign = left < 0 ? "-" : "";
      left = Math.abs(left);
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = sign + (h ? h + ":" + pad(m) : m) + ":" + pad(s);
      el.classList.toggle("text-danger", sign === "-");
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSwap", tick);

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr.queue-row")); }
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT");
    if (typing) {
      if (target.tagName === "TEXTAREA" && event.key === "Enter" && (event.ctrlKey || event.metaKey) && target.form) {
        event.preventDefault();
        var button = target.form.querySelector("button[name=step]");
        if (button) { button.click(); }
      }
      return;
    }
    if (event.key === "/") {
      var search = document.getElementById("q");
      if (search) { event.preventDefault(); search.focus(); }
    } else if (event.key === "r") {
      var reply = document.querySelector("[data-shortcut=r]");
      if (reply) { event.preventDefault(); reply.focus(); }
    } else if (event.key === "j" || event.key === "k") {
      var list = rows();
      if (!list.length) { return; }
      var index = list.indexOf(document.activeElement);
      index = event.key === "j" ? Math.min(index + 1, list.length - 1) : Math.max(index - 1, 0);
      list[index].focus();
    } else if (event.key === "Enter" && document.activeElement && document.activeElement.dataset.href) {
      window.location = document.activeElement.dataset.href;
    }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".use-suggestion") : null;
    if (!button) { return; }
    var reply = document.getElementById("reply-body");
    if (reply) { reply.value = button.dataset.answer; reply.focus(); }
  });
})();
