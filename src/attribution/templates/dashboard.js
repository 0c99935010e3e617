"use strict";
// The dashboard's figures, charts and tables for the selected dates, drawn from the report rows embedded as
// JSON (#data). Names from the data are only ever set as text (textContent), never parsed as markup.
const DATA = JSON.parse(document.getElementById("data").textContent);
const UNDEFINED = "\u2014";
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = { cost: "#2f6fdb", ihc: "#e8832a", models: ["#2f6fdb", "#e8832a", "#2a9d6f", "#8a5cc9", "#c9463d", "#6b7785"] };
const SUMMED = ["cost", "ihc", "ihc_revenue"];
const ROWS = DATA.rows.map(([channel_name, date, cost, ihc, ihc_revenue]) => ({ channel_name, date, cost, ihc, ihc_revenue }));
const DATES = [...new Set(ROWS.map((row) => row.date))].sort();

// Numbers

const number = (decimals, prefix = "", most = decimals) => (value) => value === null ? UNDEFINED
  : prefix + value.toLocaleString("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: most });
const money = number(2, "\u20ac");
const plain = number(2);
const orders = number(0, "", 1);  // credit splits orders: one decimal, none for whole orders
const share = (value) => value === null ? UNDEFINED : (100 * value).toFixed(1) + "%";

/** CPO and ROAS as reporting/metrics.py defines them: defined where spend and the denominator are positive. */
function withRatios(sums) {
  for (const [name, [numerator, denominator]] of Object.entries(DATA.ratios)) {
    sums[name] = sums[DATA.spend] > 0 && sums[denominator] > 0 ? sums[numerator] / sums[denominator] : null;
  }
  return sums;
}

function sumOf(records) {
  const sums = Object.fromEntries(SUMMED.map((column) => [column, 0]));
  records.forEach((record) => SUMMED.forEach((column) => { sums[column] += record[column]; }));
  return sums;
}

/** Per channel: sums, ratios and shares of spend and credit, the most credited channel first. */
function channelTotals(rows) {
  const groups = new Map();
  rows.forEach((row) => groups.set(row.channel_name, [...(groups.get(row.channel_name) || []), row]));
  const all = sumOf(rows);
  const ratio = (value, total) => total > 0 ? value / total : null;
  return [...groups].map(([channel_name, group]) => {
    const sums = withRatios({ channel_name, ...sumOf(group) });
    return { ...sums, cost_share: ratio(sums.cost, all.cost), ihc_share: ratio(sums.ihc, all.ihc) };
  }).sort((a, b) => b.ihc - a.ihc || compareText(a.channel_name, b.channel_name));
}

function headline(channels) {
  const paid = withRatios(sumOf(channels.filter((channel) => channel.cost > 0)));
  const all = withRatios(sumOf(channels));
  return {
    spend: paid.cost, paid_revenue: paid.ihc_revenue, paid_orders: paid.ihc, paid_roas: paid.ROAS, paid_cpo: paid.CPO,
    revenue: all.ihc_revenue, orders: all.ihc, blended_roas: all.ROAS,
  };
}

function daily(rows, dates) {
  return dates.map((date) => ({ date, ...sumOf(rows.filter((row) => row.date === date)) }));
}

const compareText = (a, b) => (a < b ? -1 : a > b ? 1 : 0);  // byte order, as the CSV's rows

// The headline

const BY = DATA.model;
const CARDS = {
  "headline-paid": [
    ["spend", "Paid spend", money, "Sum of session cost; only paid channels have cost."],
    ["paid_revenue", "Revenue from paid channels", money, `Revenue credited by ${BY} to channels with spend.`],
    ["paid_orders", "Orders from paid channels", orders, `Orders credited by ${BY} to channels with spend.`],
    ["paid_roas", "Paid ROAS", plain, "Revenue from paid channels divided by paid spend."],
    ["paid_cpo", "Paid CPO", money, "Paid spend divided by orders from paid channels."],
  ],
  "headline-blended": [
    ["revenue", "All attributed revenue", money, `Revenue credited by ${BY} to every channel, paid or not.`],
    ["orders", "All attributed orders", orders, `Orders credited by ${BY} to every channel.`],
    ["blended_roas", "Blended ROAS", plain,
      "All attributed revenue divided by paid spend: counts Direct, Organic and Email revenue against ad spend, so it is not the return of the ads."],
  ],
};
const WHY = { spend: "No spend in these dates.", orders: "No orders credited to paid channels." };

function drawHeadline(figures) {
  for (const [id, cards] of Object.entries(CARDS)) {
    document.getElementById(id).replaceChildren(...cards.map(([key, label, format, formula]) => {
      const card = element("div", { class: "figure", "data-figure": key });
      card.append(element("div", { class: "label" }, label), element("div", { class: "value" }, format(figures[key])),
        element("div", { class: "formula" }, formula));
      if (figures[key] === null) card.append(element("div", { class: "why" }, figures.spend > 0 ? WHY.orders : WHY.spend));
      return card;
    }));
  }
}

// Elements

function element(tag, attributes = {}, text = null) {
  const node = tag in SVG_TAGS ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}
const SVG_TAGS = { svg: 1, g: 1, rect: 1, line: 1, text: 1, circle: 1, polyline: 1, title: 1 };

function withTitle(node, text) {
  node.append(element("title", {}, text));
  return node;
}

function legend(id, series) {
  document.getElementById(id).replaceChildren(...series.flatMap(({ name, colour }) => {
    const swatch = element("i");
    swatch.style.background = colour;
    return [swatch, document.createTextNode(name)];
  }));
}

// Charts: horizontal bars per channel, in panels side by side, and a daily line chart

const BAR = { label: 170, row: 26, top: 24, bottom: 8, gap: 16 };
/** A chart's drawing width: its width on screen, so text keeps its size whatever the card's width. */
const widthOf = (svg) => Math.round(svg.getBoundingClientRect().width) || 620;

/** ``panels``: [{title, series: [{key, name, colour, values, format, why}]}]; each panel has its own scale. */
function barChart(svg, categories, panels) {
  const rowHeight = BAR.row, height = BAR.top + rowHeight * Math.max(categories.length, 1) + BAR.bottom;
  const width = widthOf(svg);
  const panelWidth = (width - BAR.label - BAR.gap * (panels.length - 1)) / panels.length;
  svg.setAttribute("viewBox", `0 0 ${width} ${Math.max(height, 220)}`);
  svg.replaceChildren();
  categories.forEach((category, i) => svg.append(element("text", {
    class: "channel", x: BAR.label - 6, y: BAR.top + rowHeight * (i + 0.5) + 4, "text-anchor": "end",
  }, category)));
  panels.forEach((panel, p) => {
    const left = BAR.label + p * (panelWidth + BAR.gap);
    const most = Math.max(...panel.series.flatMap((series) => series.values.filter((v) => v !== null)), 0) || 1;
    const scale = (value) => (panelWidth * 0.72 * value) / most;  // room right of the longest bar for its label
    if (panel.title) svg.append(element("text", { x: left, y: 12, "font-weight": 600 }, panel.title));
    svg.append(element("line", { class: "axis", x1: left, x2: left, y1: BAR.top - 4, y2: height - BAR.bottom }));
    const barHeight = (rowHeight - 8) / panel.series.length;
    panel.series.forEach((series, s) => series.values.forEach((value, i) => {
      const y = BAR.top + rowHeight * i + 4 + barHeight * s;
      const shown = value === null ? `${UNDEFINED} ${series.why(i)}` : series.format(value);
      svg.append(withTitle(element("rect", {
        x: left, y, width: value === null ? 0 : Math.max(scale(value), 0), height: barHeight - 1, fill: series.colour,
        "data-series": series.key, "data-key": categories[i], "data-value": value === null ? "" : value.toFixed(6),
      }), `${categories[i]} \u00b7 ${series.name}: ${shown}`));
      const x = left + (value === null ? 0 : Math.max(scale(value), 0)) + 4;
      svg.append(element("text", { class: value === null ? "undefined" : "value", x, y: y + barHeight - 3 }, shown));
    }));
  });
}

const LINE = { left: 64, right: 12, top: 12, bottom: 34, height: 320 };

function lineChart(svg, days, series, incomplete) {
  const width = widthOf(svg);
  const plotWidth = width - LINE.left - LINE.right, plotHeight = LINE.height - LINE.top - LINE.bottom;
  const step = plotWidth / Math.max(days.length, 1);
  const x = (i) => LINE.left + step * (i + 0.5);
  const most = Math.max(...series.flatMap((s) => s.values), 0) * 1.1 || 1;
  const y = (value) => LINE.top + plotHeight * (1 - value / most);
  svg.setAttribute("viewBox", `0 0 ${width} ${LINE.height}`);
  svg.replaceChildren();
  days.forEach((day, i) => {
    if (day in incomplete) svg.append(withTitle(element("rect", {
      class: "incomplete", x: x(i) - step / 2, y: LINE.top, width: step, height: plotHeight,
      "data-key": day, "data-incomplete": `incomplete: ${incomplete[day]}`,
    }), `${day} is incomplete: ${incomplete[day]}`));
  });
  for (let t = 0; t <= 4; t++) {
    const value = (most * t) / 4;
    svg.append(element("line", { class: "gridline", x1: LINE.left, x2: width - LINE.right, y1: y(value), y2: y(value) }));
    svg.append(element("text", { class: "tick", x: LINE.left - 6, y: y(value) + 4, "text-anchor": "end" }, money(Math.round(value)).replace(".00", "")));
  }
  const every = Math.ceil(days.length / 8);
  days.forEach((day, i) => { if (i % every === 0) svg.append(element("text", { class: "tick", x: x(i), y: LINE.height - 12, "text-anchor": "middle" }, day)); });
  series.forEach(({ key, name, colour, values }) => {
    svg.append(element("polyline", { points: values.map((v, i) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: colour, "stroke-width": 2 }));
    values.forEach((value, i) => svg.append(withTitle(element("circle", {
      cx: x(i), cy: y(value), r: 3.5, fill: colour, "data-series": key, "data-key": days[i], "data-value": value.toFixed(6),
    }), `${days[i]} \u00b7 ${name}: ${money(value)}`)));
  });
}

const noSpend = () => "no spend";

function drawCharts(channels, days) {
  const names = channels.map((channel) => channel.channel_name);
  const column = (key) => channels.map((channel) => channel[key]);
  const shares = [
    { key: "cost_share", name: "Spend share", colour: COLOURS.cost, values: column("cost_share"), format: share, why: noSpend },
    { key: "ihc_share", name: "Credit share", colour: COLOURS.ihc, values: column("ihc_share"), format: share, why: () => "no orders" },
  ];
  legend("legend-share", shares);
  barChart(document.getElementById("chart-share"), names, [{ series: shares }]);
  barChart(document.getElementById("chart-ratios"), names, [
    { title: "ROAS: revenue per \u20ac spent", series: [{ key: "ROAS", name: "ROAS", colour: COLOURS.cost, values: column("ROAS"), format: plain, why: noSpend }] },
    { title: "CPO: \u20ac spent per order", series: [{ key: "CPO", name: "CPO", colour: COLOURS.ihc, values: column("CPO"), format: money,
      why: (i) => (channels[i].cost > 0 ? "no orders" : "no spend") }] },
  ]);
  const trend = [
    { key: "cost", name: "Spend", colour: COLOURS.cost, values: days.map((day) => day.cost) },
    { key: "ihc_revenue", name: "Attributed revenue", colour: COLOURS.ihc, values: days.map((day) => day.ihc_revenue) },
  ];
  legend("legend-trend", trend);
  lineChart(document.getElementById("chart-trend"), days.map((day) => day.date), trend, DATA.incomplete);
}

/** Each channel's orders under each stored model, over the selected dates. ``DATA.byModel`` names the models
 * and channels once and holds, per model and channel, its credit on each of DATES (null: none). */
function drawModels(from, to) {
  const svg = document.getElementById("chart-models");
  if (!svg) return;
  const { models, channels: names, credit } = DATA.byModel;
  const days = DATES.flatMap((day, d) => (day >= from && day <= to ? [d] : []));
  const sums = credit.map((perChannel) => perChannel.map((values) => {
    const given = days.map((d) => values[d]).filter((value) => value !== null);
    return given.length ? given.reduce((total, value) => total + value, 0) : null;
  }));
  const total = (c) => sums.reduce((all, perChannel) => all + (perChannel[c] ?? 0), 0);
  const channels = names.flatMap((_, c) => (sums.some((perChannel) => perChannel[c] !== null) ? [c] : []))
    .sort((a, b) => total(b) - total(a) || compareText(names[a], names[b]));
  const series = models.map((model, m) => ({
    key: model, name: model, colour: COLOURS.models[m % COLOURS.models.length], format: orders, why: () => "no credit",
    values: channels.map((c) => sums[m][c]),
  }));
  legend("legend-models", series);
  barChart(svg, channels.map((c) => names[c]), [{ series }]);
}

// Tables

const CREDIT = `credited by ${BY}`;
const TEXT = { format: (value) => value, numeric: false };
const COLUMNS = {
  channel_name: ["Channel", TEXT], date: ["Date", TEXT],
  cost: ["Spend", { format: money }], ihc: [`Orders ${CREDIT}`, { format: orders }],
  ihc_revenue: [`Revenue ${CREDIT}`, { format: money }], cost_share: ["Spend share", { format: share }],
  ihc_share: ["Credit share", { format: share }], CPO: ["CPO", { format: money }], ROAS: ["ROAS", { format: plain }],
};
const TABLES = {
  totals: ["channel_name", "cost", "ihc", "ihc_revenue", "cost_share", "ihc_share", "CPO", "ROAS"],
  report: ["channel_name", "date", "cost", "ihc", "ihc_revenue", "CPO", "ROAS"],
};

function drawTable(id, records) {
  const table = document.getElementById(id);
  if (!table.tHead) table.append(tableHead(TABLES[id]), element("tbody"));
  table.tBodies[0].replaceChildren(...records.map((record) => {
    const row = element("tr");
    if (id === "report" && record.date in DATA.incomplete) {
      row.classList.add("incomplete");
      row.title = `Incomplete: ${DATA.incomplete[record.date]}`;
    }
    row.append(...TABLES[id].map((key) => cell(key, record[key])));
    return row;
  }));
  const sorted = table.querySelector("th[aria-sort]");
  if (sorted) sortBy(sorted, sorted.getAttribute("aria-sort"));
}

function tableHead(keys) {
  const head = element("thead"), row = element("tr");
  row.append(...keys.map((key) => {
    const [heading, { numeric = true }] = COLUMNS[key];
    const th = element("th", { scope: "col", "data-column": key, class: numeric ? "num" : "" }, heading);
    th.addEventListener("click", () => sortBy(th, th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending"));
    return th;
  }));
  head.append(row);
  return head;
}

function cell(key, value) {
  const [, { format, numeric = true }] = COLUMNS[key];
  const td = element("td", { "data-column": key, "data-sort": value === null ? "" : String(value) }, format(value));
  if (numeric) td.className = value === null ? "num undefined" : "num";
  return td;
}

/** Sort a table's rows by the column of ``th``; undefined values stay last either way. */
function sortBy(th, order) {
  const table = th.closest("table"), body = table.tBodies[0];
  const sign = order === "ascending" ? 1 : -1, numeric = th.classList.contains("num");
  const key = (row) => row.querySelector(`[data-column="${th.dataset.column}"]`).dataset.sort;
  const compare = (a, b) => {
    const x = key(a), y = key(b);
    if (x === "" || y === "") return (x === "") - (y === "");
    return sign * (numeric ? Number(x) - Number(y) : x.localeCompare(y));
  };
  table.querySelectorAll("th").forEach((other) => other.removeAttribute("aria-sort"));
  th.setAttribute("aria-sort", order);
  body.append(...Array.from(body.rows).sort(compare));
}

// The CSV of the rows shown, with the file's rules (reporting/csv_rules.py)

const LABEL = DATA.csv.label;  // the model the report counts: the file's last columns, the same on every row
const CSV_COLUMNS = [...TABLES.report, ...Object.keys(LABEL)];
const FORMULA = new RegExp(DATA.csv.formula);

/** A cell as the CSV file writes it: fixed decimals, empty when undefined, text that a spreadsheet would run
 * as a formula quoted away, and quotes around text holding a comma, a quote or a line break. */
function csvCell(td) {
  const value = td.dataset.sort;
  if (value === "") return "";
  return td.classList.contains("num") ? Number(value).toFixed(DATA.csv.decimals) : csvText(value);
}

function csvText(value) {
  const text = value.replace(FORMULA, "'$1");
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function downloadCsv() {
  const rows = Array.from(document.getElementById("report").tBodies[0].rows, (row) =>
    [...TABLES.report.map((key) => csvCell(row.querySelector(`[data-column="${key}"]`))),
      ...Object.values(LABEL).map(csvText)].join(","));
  const link = element("a", {
    href: "data:text/csv;charset=utf-8," + encodeURIComponent([CSV_COLUMNS.join(","), ...rows].join("\n") + "\n"),
    download: `channel_reporting_${FROM.value}_${TO.value}.csv`,
  });
  document.body.append(link);
  link.click();
  link.remove();
}

// The date filter

const FROM = document.getElementById("date-from"), TO = document.getElementById("date-to");

function draw() {
  const [from, to] = [FROM.value, TO.value].sort(compareText);
  const rows = ROWS.filter((row) => row.date >= from && row.date <= to);
  const days = DATES.filter((day) => day >= from && day <= to);
  const channels = channelTotals(rows);
  drawHeadline(headline(channels));
  drawCharts(channels, daily(rows, days));
  drawModels(from, to);
  drawTable("totals", channels);
  drawTable("report", rows.map((row) => withRatios({ ...row })));
  document.getElementById("shown-dates").textContent = DATES.length
    ? `Showing ${days.length} of ${DATES.length} days (${from} to ${to}).` : "The report has no rows.";
}

function allDates() {
  [FROM.value, TO.value] = [DATES[0] || "", DATES[DATES.length - 1] || ""];
  draw();
}

function edgeNote() {
  const reasons = new Map();
  Object.entries(DATA.incomplete).forEach(([day, why]) => reasons.set(why, [...(reasons.get(why) || []), day]));
  document.getElementById("edge-note").textContent = reasons.size === 0 ? "" : "Shaded days are incomplete: "
    + [...reasons].map(([why, days]) => `${days.join(", ")}: ${why}`).join("; ") + ".";
}

for (const input of [FROM, TO]) {
  input.min = DATES[0] || "";
  input.max = DATES[DATES.length - 1] || "";
  input.disabled = DATES.length === 0;
  input.addEventListener("change", draw);
  input.addEventListener("input", draw);
}
document.getElementById("date-all").addEventListener("click", allDates);
document.getElementById("download").addEventListener("click", downloadCsv);
edgeNote();
allDates();
document.getElementById("report").dataset.ready = "";
