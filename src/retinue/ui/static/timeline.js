// A run's timeline: every agent run is a bar over time, each sub-run on the row under the run that started
// it, so specialists asked together and clones working in parallel show as bars side by side. Model calls
// (upper half of a bar, solid) and tool calls (lower half, outlined) are marks on their agent's bar. The bars
// of a running run end at "now", so each redraw grows them.
"use strict";

const TIMELINE = { row: 30, bar: 20, label: 230, axis: 30, indent: 14, right: 18, minWidth: 2 };
const BAR_KINDS = new Set(["lead", "specialist", "clone"]);

// Rows depth first, children by start time: a sub-run sits under its parent, siblings in the order they began.
function timelineRows(tree) {
  const rows = [];
  const visit = (node, depth, parentRow) => {
    const row = { node, depth, parentRow };
    rows.push(row);
    const children = [...node.children].sort((a, b) => a.run.started_at - b.run.started_at);
    for (const child of children) visit(child, depth + 1, row);
  };
  visit(tree, 0, null);
  rows.forEach((row, index) => { row.index = index; });
  return rows;
}

function lastSeen(node) {
  let at = node.run.started_at;
  for (const step of node.steps) at = Math.max(at, step.finished_at ?? step.started_at);
  return at;
}

// A run still going ends now; one whose process died ends at the last thing it recorded.
function runEnd(node, now) {
  const run = node.run;
  if (run.finished_at !== null) return run.finished_at;
  return run.status === "running" ? Math.max(now, lastSeen(node)) : lastSeen(node);
}

function stepEnd(step, node, now) {
  if (step.finished_at !== null) return step.finished_at;
  return node.run.status === "running" ? Math.max(now, step.started_at) : step.started_at;
}

function barKind(node, depth) {
  if (depth === 0) return "lead";
  return BAR_KINDS.has(node.run.kind) ? node.run.kind : "subrun";
}

function usageText(usage) {
  if (!usage) return "no usage recorded";
  return tokens(usage.input_tokens) + " in / " + tokens(usage.output_tokens) + " out tokens · " + dollars(usage.cost_usd);
}

function barTip(node, start, end, t0) {
  const run = node.run;
  const calls = node.steps.filter((step) => step.kind === "model_call").length;
  const tools = node.steps.length - calls;
  const lines = [
    run.agent + (run.kind ? " (" + run.kind + ")" : "") + " · " + run.status,
    (run.status === "running" ? "running for " : "took ") + seconds(end - start) + ", from +" + seconds(start - t0),
    calls + (calls === 1 ? " model call · " : " model calls · ") + tools + (tools === 1 ? " tool call" : " tool calls"),
    "own: " + usageText(run.usage),
  ];
  if (node.children.length) lines.push("with sub-agents: " + usageText(run.total_usage));
  if (run.error) lines.push("stopped: " + oneLine(run.error, 200));
  return lines.join("\n");
}

function modelCallTip(call, start, end) {
  const state = call.error ? "failed: " + oneLine(call.error, 160) : call.response ? seconds(end - start) : "waiting for the model";
  return ["model call #" + call.id + " · turn " + call.turn + " · " + call.model_id, state, usageText(call.usage)].join("\n");
}

function toolCallTip(call, start, end) {
  const outcome = call.result === null ? "running" : call.is_error ? "failed" : "ok";
  const lines = ["tool " + call.name + " · " + outcome, (call.result === null ? "running for " : "took ") + seconds(end - start)];
  if (call.approval) lines.push("approval: " + call.approval.status);
  if (call.is_error && call.result) lines.push(oneLine(call.result, 200));
  return lines.join("\n");
}

// The timeline of `tree` as an SVG element `width` pixels wide, with bars ending at `now` while running.
function timelineSvg(tree, width, now) {
  const rows = timelineRows(tree);
  const t0 = tree.run.started_at;
  const t1 = Math.max(t0 + 0.001, ...rows.map((row) => runEnd(row.node, now)));
  const plotLeft = TIMELINE.label;
  const plotRight = width - TIMELINE.right;
  const x = linearScale(t0, t1, plotLeft, plotRight);
  const plotBottom = TIMELINE.axis + rows.length * TIMELINE.row;
  const height = plotBottom + 24;
  const barTop = (row) => TIMELINE.axis + row.index * TIMELINE.row + (TIMELINE.row - TIMELINE.bar) / 2;
  const span = (start, end) => ({ x: x(start), width: Math.max(TIMELINE.minWidth, x(end) - x(start)) });

  const titleId = "timeline-title-" + tree.run.run_id;
  const svg = svgEl("svg", { class: "timeline", width, height, role: "group", "aria-labelledby": titleId },
    svgEl("title", { id: titleId, text: "Timeline of run " + shortId(tree.run.run_id) + ": " + rows.length + (rows.length === 1 ? " agent run" : " agent runs") + " over " + seconds(t1 - t0) }));

  const axis = svgEl("g", { class: "axis" },
    svgEl("text", { x: 4, y: TIMELINE.axis - 10, class: "axis-title", text: "agent (sub-runs under their parent)" }),
    svgEl("text", { x: (plotLeft + plotRight) / 2, y: height - 6, class: "axis-title", "text-anchor": "middle", text: "time since the run started" }));
  for (const value of tickValues(0, t1 - t0, Math.max(2, Math.floor((plotRight - plotLeft) / 90)))) {
    const at = x(t0 + value);
    axis.append(
      svgEl("line", { x1: at, x2: at, y1: TIMELINE.axis - 6, y2: plotBottom, class: "grid" }),
      svgEl("text", { x: at, y: TIMELINE.axis - 10, class: "tick", "text-anchor": "middle", text: seconds(value) }));
  }
  svg.append(axis);

  // A thin line from the parent's row down to where each sub-run begins: who started whom, at a glance.
  const links = svgEl("g", { class: "links", "aria-hidden": "true" });
  for (const row of rows) {
    if (!row.parentRow) continue;
    const at = x(row.node.run.started_at);
    links.append(svgEl("line", { x1: at, x2: at, y1: barTop(row.parentRow) + TIMELINE.bar, y2: barTop(row), class: "tl-link" }));
  }
  svg.append(links);

  for (const row of rows) {
    const { node, depth } = row;
    const run = node.run;
    const start = run.started_at;
    const end = runEnd(node, now);
    const top = barTop(row);
    const kind = barKind(node, depth);
    const indent = Math.min(depth, 6); // deeper sub-runs line up at the sixth level, so labels keep their room
    const label = svgEl("text", { x: 4 + indent * TIMELINE.indent, y: top + TIMELINE.bar / 2 + 4, class: "tl-label" },
      svgTitle(run.agent),
      svgEl("tspan", { class: "agent", text: oneLine(run.agent, 24 - indent) }),
      run.kind && depth > 0 ? svgEl("tspan", { class: "kind", text: " " + run.kind }) : null);
    const barSpan = span(start, end);
    const status = run.status === "completed" ? "" : " " + run.status;
    const bar = svgEl("g", {
      class: "tl-bar " + kind + status,
      tabindex: 0,
      dataset: { runId: run.run_id, agent: run.agent, start: String(start), end: String(end), tip: barTip(node, start, end, t0) },
    },
      svgTitle(run.agent + (run.kind ? " (" + run.kind + ")" : "") + ", " + run.status + ", " + seconds(end - start)),
      svgEl("rect", { x: barSpan.x, y: top, width: barSpan.width, height: TIMELINE.bar, rx: 3, class: "tl-body" }));
    for (const step of node.steps) {
      const stepStart = step.started_at;
      const stepFinish = stepEnd(step, node, now);
      const mark = span(stepStart, stepFinish);
      if (step.kind === "model_call") {
        const failed = step.error ? " failed" : "";
        bar.append(svgEl("rect", {
          x: mark.x, y: top + 2, width: mark.width, height: TIMELINE.bar / 2 - 2, class: "tl-call" + failed,
          dataset: { callId: String(step.id), tip: modelCallTip(step, stepStart, stepFinish) },
          onclick: () => openCall(step.id),
        }));
      } else {
        const failed = step.is_error ? " failed" : "";
        bar.append(svgEl("rect", {
          x: mark.x, y: top + TIMELINE.bar / 2 + 0.5, width: mark.width, height: TIMELINE.bar / 2 - 2.5, class: "tl-tool" + failed,
          dataset: { toolCallId: step.tool_call_id, tip: toolCallTip(step, stepStart, stepFinish) },
        }));
      }
    }
    svg.append(label, bar);
  }
  return svg;
}

function timelineLegend() {
  return el("div", { class: "legend", "aria-label": "Timeline legend" },
    legendItem("tl-body lead", "lead"), legendItem("tl-body specialist", "specialist"),
    legendItem("tl-body clone", "clone"), legendItem("tl-body subrun", "other sub-run"),
    legendItem("tl-call", "model call"), legendItem("tl-tool", "tool call"), legendItem("tl-tool failed", "failed"));
}

// Draw (or redraw) the timeline of `tree` into `box`, as wide as the box is.
function drawTimeline(box, tree) {
  const width = Math.max(520, box.clientWidth || 900);
  box.replaceChildren(timelineSvg(tree, width, Date.now() / 1000), timelineLegend());
}
