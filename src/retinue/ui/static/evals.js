// The eval reports pages: the list of saved `retinue eval` reports, and one report's pass^k per task and
// architecture as a chart, each architecture's newest report beside the one before it, the delta written out.
"use strict";

const evalState = { reports: [], selected: null, detail: null, k: null };

const score = (value) => (value === undefined || value === null ? "–" : value.toFixed(2));
const when = (createdAt, modifiedAt) => (createdAt ? createdAt.replace("T", " ").replace("Z", " UTC") : new Date(modifiedAt * 1000).toLocaleString());
const reportName = (report) => [report.app || "?", report.architecture || "?", report.model || "?"].join(" / ");

function signedDelta(delta) {
  // The sign is a shape as well as a colour: ▲ and ▼ read in greyscale.
  if (Math.abs(delta) < 0.005) return { text: "= 0.00", class: "same" };
  return delta > 0 ? { text: "▲ +" + delta.toFixed(2), class: "up" } : { text: "▼ −" + (-delta).toFixed(2), class: "down" };
}

async function showEvals(reportId) {
  evalState.selected = reportId;
  const detail = document.getElementById("detail");
  if (!reportId) detail.replaceChildren(el("div", { class: "empty", text: "Select an eval report." }));
  else if (evalState.detail && evalState.detail.id === reportId) renderEvalReport();
  else detail.replaceChildren(el("div", { class: "empty", text: "Loading…" }));
  await refreshEvalList();
  if (!reportId) return;
  try {
    const body = await api("/api/evals/" + encodeURIComponent(reportId));
    if (evalState.selected !== reportId) return; // another report was picked meanwhile
    evalState.detail = body;
    evalState.k = null;
    renderEvalReport();
  } catch (error) {
    detail.replaceChildren(el("div", { class: "empty errtext", text: error.message }));
  }
}

async function refreshEvalList() {
  try {
    const listing = await api("/api/evals");
    evalState.reports = listing.reports;
    renderEvalList(listing.directory);
  } catch (error) {
    document.getElementById("eval-list").replaceChildren(el("div", { class: "errtext", text: error.message }));
  }
}

// `retinue eval` may save a report while the page is open: the list is read again every few seconds.
setInterval(() => { if (state.view === "evals") refreshEvalList(); }, 5000);

function renderEvalList(directory) {
  const list = document.getElementById("eval-list");
  list.replaceChildren();
  if (!evalState.reports.length) {
    list.append(el("div", { class: "empty", text: "No eval reports in " + directory + " yet: `retinue eval APP` saves one per architecture." }));
  }
  for (const report of evalState.reports) {
    const selected = report.id === evalState.selected ? " selected" : "";
    const item = el("a", { class: "run-item report-item" + selected, href: "#eval=" + encodeURIComponent(report.id), dataset: { reportId: report.id } });
    if (report.unreadable) {
      item.append(
        el("div", { class: "top" }, el("span", { class: "agent", text: report.id }), el("span", { class: "pill error", text: "unreadable" })),
        el("div", { class: "prompt", text: report.unreadable }));
    } else {
      item.append(
        el("div", { class: "top" }, el("span", { class: "agent", text: reportName(report) })),
        el("div", { class: "meta" },
          el("span", { text: when(report.created_at, report.modified_at) }),
          el("span", { text: report.tasks + (report.tasks === 1 ? " task" : " tasks") + " × " + report.trials })),
        el("div", { class: "meta" }, ...report.ks.map((k) => el("span", { class: "pass", text: "pass^" + k + " " + score(report.pass_hat[String(k)]) }))));
    }
    list.append(item);
  }
}

function renderEvalReport() {
  const detail = document.getElementById("detail");
  const body = evalState.detail;
  if (body.unreadable) {
    detail.replaceChildren(
      el("div", { class: "run-header" }, el("span", { class: "title", text: body.id }), el("span", { class: "pill error", text: "unreadable" })),
      el("div", { class: "interrupted-note unreadable", text: "This report file cannot be read: " + body.unreadable }));
    return;
  }
  const report = body.report;
  const maxK = Math.max(1, ...body.architectures.map((panel) => panel.current.ks.length));
  const k = evalState.k || Math.min(2, Math.max(1, report.ks.length));
  const previous = body.previous;
  const overall = (summary) => (summary ? summary.pass_hat[String(k)] : undefined);
  const delta = previous && overall(previous) !== undefined && overall(report) !== undefined ? signedDelta(overall(report) - overall(previous)) : null;
  const parts = [
    el("div", { class: "run-header" },
      el("span", { class: "title", text: reportName(report) }),
      el("span", { class: "num", text: when(report.created_at, report.modified_at) + " · user model " + (report.user_model || "?") })),
    el("div", { class: "stats" },
      stat("Tasks", String(report.tasks.length), "tasks"),
      stat("Trials per task", String(report.trials), "trials"),
      ...report.ks.map((each) => stat("pass^" + each, score(report.pass_hat[String(each)]), "pass-" + each)),
      previous ? stat("Previous pass^" + k, score(overall(previous)), "previous") : null,
      delta ? el("div", { class: "stat delta " + delta.class, dataset: { stat: "delta" } }, el("div", { class: "label", text: "Change in pass^" + k }), el("div", { class: "value", text: delta.text })) : null),
    el("div", { class: "prompt-box", text: previous ? "Compared with the previous report of " + reportName(previous) + " on the same tasks, from " + when(previous.created_at, previous.modified_at) + "." : "No earlier report of " + reportName(report) + " on the same tasks to compare with." }),
    report.split ? el("div", { class: "num split", text: "Held-out tasks (split seed " + report.split.seed + "): " + report.split.held_out.join(", ") }) : null,
    el("h2", { text: "pass^k per task and architecture" }),
    kChooser(maxK, k),
    chartBox(passChart(body.architectures, report, k)),
    el("div", { class: "legend" }, legendItem("pk-cur", "newest report"), legendItem("pk-prev", "the report before it"), el("span", { class: "legend-item", text: "▲ better · ▼ worse · = same" })),
    el("h2", { text: "Failed trials" }),
    failureList(report.failures)];
  detail.replaceChildren(...parts.filter(Boolean));
}

function kChooser(maxK, k) {
  const box = el("div", { class: "k-chooser", role: "radiogroup", "aria-label": "k of pass^k" }, el("span", { class: "num", text: "k =" }));
  for (let each = 1; each <= maxK; each++) {
    box.append(el("button", { type: "button", role: "radio", "aria-checked": String(each === k), class: each === k ? "primary" : "", onclick: () => { evalState.k = each; renderEvalReport(); } }, String(each)));
  }
  return box;
}

function chartBox(svg) {
  return el("div", { class: "timeline-box chart-box" }, svg);
}

function failureList(failures) {
  if (!failures.length) return el("div", { class: "empty", text: "Every trial passed." });
  return el("div", {}, ...failures.map((failure) =>
    el("div", { class: "step tool failed failure", dataset: { taskId: failure.task_id } },
      el("div", { class: "line" },
        el("span", { class: "name", text: failure.task_id }),
        el("span", { class: "num", text: "trial " + (failure.trial ?? "?") + " · ended: " + failure.ending })),
      el("div", { class: "io", text: failure.verdict }))));
}

// Small multiples: one panel per architecture, rows the tasks (all tasks first), each row the newest report's
// bar (solid) under the previous report's (hatched), and the change beside them.
const PASS_CHART = { label: 190, row: 30, header: 52, axis: 30, panel: 300, gap: 26, delta: 64 };

function passChart(panels, report, k) {
  const key = String(k);
  const taskIds = [...report.tasks.map((task) => task.id)];
  for (const panel of panels) for (const task of panel.current.tasks) if (!taskIds.includes(task.id)) taskIds.push(task.id);
  const rows = [{ id: null, label: "all tasks (mean)" }, ...taskIds.map((id) => ({ id, label: id }))];
  const available = Math.max(700, (document.getElementById("detail").clientWidth || 1000) - 50);
  const panelWidth = Math.max(PASS_CHART.panel, Math.floor((available - PASS_CHART.label) / panels.length));
  const width = PASS_CHART.label + panels.length * panelWidth;
  const plotBottom = PASS_CHART.header + rows.length * PASS_CHART.row;
  const height = plotBottom + PASS_CHART.axis;
  const svg = svgEl("svg", { class: "pass-chart", width, height, role: "group", "aria-labelledby": "pass-chart-title" },
    svgEl("title", { id: "pass-chart-title", text: "pass^" + k + " per task for " + panels.map((panel) => panel.architecture).join(", ") + ", newest report beside the previous one" }));
  svg.append(svgEl("text", { x: 4, y: PASS_CHART.header - 10, class: "axis-title", text: "task" }));
  rows.forEach((row, index) => {
    const y = PASS_CHART.header + index * PASS_CHART.row;
    if (index % 2 === 1) svg.append(svgEl("rect", { x: 0, y, width, height: PASS_CHART.row, class: "band" }));
    svg.append(svgEl("text", { x: 4, y: y + PASS_CHART.row / 2 + 4, class: "tl-label" + (row.id === null ? " overall" : ""), text: oneLine(row.label, 26) }, svgTitle(row.label)));
  });
  panels.forEach((panel, index) => svg.append(passPanel(panel, rows, key, PASS_CHART.label + index * panelWidth, panelWidth, plotBottom, panel.current.id === report.id)));
  return svg;
}

function passPanel(panel, rows, key, left, panelWidth, plotBottom, chosen) {
  const barLeft = left + 8;
  const barRight = left + panelWidth - PASS_CHART.delta - PASS_CHART.gap;
  const x = linearScale(0, 1, barLeft, barRight);
  const { current, previous } = panel;
  const group = svgEl("g", { class: "pass-panel" + (chosen ? " chosen" : ""), dataset: { architecture: panel.architecture } });
  group.append(
    svgEl("text", { x: barLeft, y: 18, class: "panel-title", text: panel.architecture + (chosen ? " (this report)" : "") }),
    svgEl("text", { x: barLeft, y: 34, class: "tick", text: "newest " + when(current.created_at, current.modified_at) }),
    svgEl("text", { x: barLeft, y: 47, class: "tick", text: previous ? "before: " + when(previous.created_at, previous.modified_at) : "no earlier report to compare" }));
  for (const value of [0, 0.25, 0.5, 0.75, 1]) {
    group.append(
      svgEl("line", { x1: x(value), x2: x(value), y1: PASS_CHART.header - 4, y2: plotBottom, class: "grid" }),
      svgEl("text", { x: x(value), y: plotBottom + 16, class: "tick", "text-anchor": "middle", text: value.toFixed(2).replace(/\.?0+$/, "") || "0" }));
  }
  group.append(svgEl("text", { x: (barLeft + barRight) / 2, y: plotBottom + 28, class: "axis-title", "text-anchor": "middle", text: "pass^" + key }));
  const valueOf = (summary, id) => {
    if (!summary) return undefined;
    if (id === null) return summary.pass_hat[key];
    const task = summary.tasks.find((each) => each.id === id);
    return task ? task.pass_hat[key] : undefined;
  };
  const trialsOf = (summary, id) => {
    const task = summary && id !== null ? summary.tasks.find((each) => each.id === id) : null;
    return task ? " (" + task.passed + " of " + task.trials + " trials passed)" : "";
  };
  rows.forEach((row, index) => {
    const top = PASS_CHART.header + index * PASS_CHART.row;
    const now = valueOf(current, row.id);
    const before = valueOf(previous, row.id);
    const name = panel.architecture + " · " + (row.id === null ? "all tasks" : row.id);
    const ranTask = row.id === null || current.tasks.some((each) => each.id === row.id);
    if (previous && before !== undefined) {
      group.append(svgEl("rect", {
        x: barLeft, y: top + 4, width: Math.max(1, x(before) - barLeft), height: 9, class: "pk-prev",
        dataset: { tip: name + "\nthe report before: pass^" + key + " = " + score(before) + trialsOf(previous, row.id) },
      }));
    }
    if (now !== undefined) {
      const deltaText = previous && before !== undefined ? "\nchange: " + signedDelta(now - before).text : "";
      group.append(svgEl("rect", {
        x: barLeft, y: top + 14, width: Math.max(1, x(now) - barLeft), height: 12, class: "pk-cur",
        dataset: { tip: name + "\nnewest: pass^" + key + " = " + score(now) + trialsOf(current, row.id) + deltaText, task: row.id ?? "", value: String(now) },
      }));
      // The value at the bar's end: inside a long bar, so it never runs into the change column.
      const inside = now > 0.8;
      group.append(svgEl("text", { x: inside ? x(now) - 4 : x(now) + 4, y: top + 24, "text-anchor": inside ? "end" : "start", class: "tick value" + (inside ? " inside" : ""), text: score(now) }));
    } else {
      group.append(svgEl("text", { x: barLeft + 2, y: top + 24, class: "tick", text: ranTask ? "n/a: fewer than " + key + " trials" : "not run" }));
    }
    if (previous && now !== undefined && before !== undefined) {
      const change = signedDelta(now - before);
      group.append(svgEl("text", { x: barRight + 14, y: top + 20, class: "delta " + change.class, dataset: { task: row.id ?? "" }, text: change.text }));
    }
  });
  return group;
}
