/* Finder Inbox: the report page's charts, drawn with Apache ECharts (static/vendor) from the
   numbers the page carries as JSON in #report-figures' data-report attribute (data, not code, so
   the Content-Security-Policy allows it, and it survives htmx swaps, which drop script elements). Every chart's words come translated
   from the server. Charts are drawn again after htmx swaps in new figures, and resized with the
   window and for printing. */
(function () {
  "use strict";

  var charts = [];
  var PALETTE = ["#0f8a5f", "#2f6fde", "#c2410c", "#8b5cf6", "#0891b2"];

  function readData() {
    var element = document.getElementById("report-figures");
    return element && element.dataset.report ? JSON.parse(element.dataset.report) : null;
  }

  function grid() {
    return { left: 48, right: 16, top: 36, bottom: 40, containLabel: true };
  }

  var OPTIONS = {
    volume: function (data) {
      return {
        color: PALETTE,
        tooltip: { trigger: "axis" },
        legend: { top: 0 },
        grid: grid(),
        xAxis: { type: "category", data: data.labels },
        yAxis: { type: "value", minInterval: 1 },
        series: data.series.map(function (series) {
          return { name: series.name, type: "line", smooth: true, showSymbol: false, data: series.data };
        })
      };
    },
    first_response: function (data) {
      return {
        color: PALETTE,
        tooltip: { trigger: "axis" },
        grid: grid(),
        xAxis: { type: "category", data: data.labels, axisLabel: { interval: 0 } },
        yAxis: { type: "value", minInterval: 1 },
        series: [{ name: data.name, type: "bar", data: data.data, barMaxWidth: 48 }]
      };
    },
    heatmap: function (data) {
      var highest = data.data.reduce(function (most, cell) { return Math.max(most, cell[2]); }, 0);
      return {
        tooltip: { position: "top" },
        grid: { left: 48, right: 16, top: 16, bottom: 64, containLabel: true },
        xAxis: { type: "category", data: data.hours, splitArea: { show: true } },
        yAxis: { type: "category", data: data.days, inverse: true, splitArea: { show: true } },
        visualMap: {
          min: 0, max: Math.max(highest, 1), calculable: true, orient: "horizontal",
          left: "center", bottom: 0, inRange: { color: ["#f4f5f7", "#0f8a5f"] }
        },
        series: [{ name: data.name, type: "heatmap", data: data.data }]
      };
    },
    agents: function (data) {
      return {
        color: PALETTE,
        tooltip: { trigger: "axis" },
        legend: { top: 0 },
        grid: grid(),
        xAxis: { type: "value", minInterval: 1 },
        yAxis: { type: "category", data: data.labels, inverse: true },
        series: data.series.map(function (series) {
          return { name: series.name, type: "bar", data: series.data };
        })
      };
    }
  };

  function draw() {
    charts.forEach(function (chart) { chart.dispose(); });
    charts = [];
    var data = readData();
    if (!data || !window.echarts) { return; }
    document.querySelectorAll("[data-chart]").forEach(function (element) {
      var make = OPTIONS[element.dataset.chart];
      if (!make || !data[element.dataset.chart]) { return; }
      var chart = window.echarts.init(element, null, { renderer: "canvas" });
      chart.setOption(make(data[element.dataset.chart]));
      charts.push(chart);
    });
  }

  function resize() {
    charts.forEach(function (chart) { chart.resize(); });
  }

  document.addEventListener("DOMContentLoaded", draw);
  // The figures are swapped whole (outerHTML): the settled element is the new one, so listen on
  // the body and draw whatever data the page now carries.
  document.body.addEventListener("htmx:afterSettle", draw);
  window.addEventListener("resize", resize);
  // Paper has no toggles: every table prints open, and closes again afterwards.
  var closedForPrint = [];
  window.addEventListener("beforeprint", function () {
    closedForPrint = Array.prototype.filter.call(
      document.querySelectorAll("details.report-table:not([open])"),
      function (details) { details.open = true; return true; }
    );
    resize();
  });
  window.addEventListener("afterprint", function () {
    closedForPrint.forEach(function (details) { details.open = false; });
    closedForPrint = [];
    resize();
  });
})();
