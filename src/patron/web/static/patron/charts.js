/* Charts: every element with data-chart="<id of a json_script>" becomes an ECharts chart whose
   option object the server wrote into that script tag. No chart logic lives in the browser.

   An option may carry "drill": {url, series} (patron.web.charts.with_drill): a click on a point
   then opens url with each {name} replaced by series[seriesIndex][name], taken at the point's
   data index when it is a list. */
(function () {
  "use strict";
  function drillUrl(drill, seriesIndex, dataIndex) {
    var params = drill.series[seriesIndex];
    if (!params) return null;
    var isMissing = false;
    var url = drill.url.replace(/\{(\w+)\}/g, function (whole, name) {
      var value = params[name];
      if (Array.isArray(value)) value = value[dataIndex];
      if (value === undefined || value === null) {
        isMissing = true;
        return "";
      }
      return encodeURIComponent(value);
    });
    return isMissing ? null : url;
  }
  function draw(root) {
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.chartReady) return;
      var source = document.getElementById(el.dataset.chart);
      if (!source || !window.echarts) return;
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      var option = JSON.parse(source.textContent);
      var drill = option.drill;
      delete option.drill;
      chart.setOption(option);
      if (drill) {
        chart.on("click", function (event) {
          if (event.componentType !== "series") return;
          var url = drillUrl(drill, event.seriesIndex, event.dataIndex);
          if (url) window.location.assign(url);
        });
        el.dataset.drill = "1";
      }
      el.dataset.chartReady = "1";
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
  document.addEventListener("htmx:afterSwap", function (event) { draw(event.target); });
})();
