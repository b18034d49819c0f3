// The improvement runs pages: the list of `retinue improve` runs, and one run's scores per iteration on the
// train and held-out tasks as a line chart, with the accepted changes as diffs of old and new text.
"use strict";

const improveState = { runs: [], selected: null, detail: null };

const runName = (run) => [run.app || "?", run.architecture || "?", run.model || "?"].join(" / ");

async function showImprovementRuns(runId) {
  improveState.selected = runId;
  const detail = document.getElementById("detail");
  if (!runId) detail.replaceChildren(el("div", { class: "empty", text: "Select an improvement run." }));
  else if (improveState.detail && improveState.detail.id === runId) renderImprovementRun();
  else detail.replaceChildren(el("div", { class: "empty", text: "Loading…" }));
  await refreshImprovementList();
  if (!runId) return;
  try {
    const body = await api("/api/improve/" + encodeURIComponent(runId));
    if (improveState.selected !== runId) return; // another run was picked meanwhile
    improveState.detail = body;
    renderImprovementRun();
  } catch (error) {
    detail.replaceChildren(el("div", { class: "empty errtext", text: error.message }));
  }
}

async function refreshImprovementList() {
  const list = document.getElementById("improve-list");
  try {
    const listing = await api("/api/improve");
    improveState.runs = listing.runs;
    renderImprovementList(listing.directory);
  } catch (error) {
    list.replaceChildren(el("div", { class: "errtext", text: error.message }));
  }
}

setInterval(() => { if (state.view === "improve") refreshImprovementList(); }, 5000);

function scoreChange(run) {
  if (!run.accepted) return "nothing accepted";
  return "held-out pass^" + run.k + " " + score(run.seed.held_out) + " → " + score(run.accepted.held_out);
}

function renderImprovementList(directory) {
  const list = document.getElementById("improve-list");
  list.replaceChildren();
  if (!improveState.runs.length) {
    list.append(el("div", { class: "empty", text: "No improvement runs in " + directory + " yet: `retinue improve APP` records one." }));
  }
  for (const run of improveState.runs) {
    const selected = run.id === improveState.selected ? " selected" : "";
    const item = el("a", { class: "run-item report-item" + selected, href: "#improve=" + encodeURIComponent(run.id), dataset: { runId: run.id } });
    if (run.unreadable) {
      item.append(
        el("div", { class: "top" }, el("span", { class: "agent", text: run.id }), el("span", { class: "pill error", text: "unreadable" })),
        el("div", { class: "prompt", text: run.unreadable }));
    } else {
      item.append(
        el("div", { class: "top" }, el("span", { class: "agent", text: runName(run) }),
          el("span", { class: "pill " + (run.accepted ? "completed" : "limit"), text: run.accepted ? "accepted" : "none accepted" })),
        el("div", { class: "meta" },
          el("span", { text: when(run.started_at, run.modified_at) }),
          el("span", { text: run.rollouts + " rollouts" }),
          el("span", { text: dollars(run.cost_usd) })),
        el("div", { class: "meta" }, el("span", { class: "pass", text: scoreChange(run) })));
    }
    list.append(item);
  }
}

function renderImprovementRun() {
  const detail = document.getElementById("detail");
  const run = improveState.detail;
  if (run.unreadable) {
    detail.replaceChildren(
      el("div", { class: "run-header" }, el("span", { class: "title", text: run.id }), el("span", { class: "pill error", text: "unreadable" })),
      el("div", { class: "interrupted-note unreadable", text: "This improvement run's file cannot be read: " + run.unreadable }));
    return;
  }
  const accepted = run.accepted;
  const parts = [
    el("div", { class: "run-header" },
      el("span", { class: "title", text: runName(run) }),
      el("span", { class: "pill " + (accepted ? "completed" : "limit"), text: accepted ? "candidate " + accepted.candidate + " accepted" : "none accepted" }),
      el("span", { class: "num", text: when(run.started_at, run.modified_at) + " · reflection by " + (run.reflection_model || "?") })),
    el("div", { class: "stats" },
      stat("Held-out pass^" + run.k + ", seed", score(run.seed.held_out), "seed-held-out"),
      accepted ? stat("Held-out pass^" + run.k + ", accepted", score(accepted.held_out), "accepted-held-out") : null,
      stat("Rollouts", run.rollouts + (run.budget ? " / " + run.budget : ""), "rollouts"),
      stat("Model calls", String(run.model_calls), "model-calls"),
      stat("Cost", dollars(run.cost_usd), "cost"),
      stat("Time", seconds(run.seconds), "time")),
    el("div", { class: "prompt-box", text: "Stopped: " + run.stop_reason }),
    run.split ? el("div", { class: "num split", text: "Split seed " + run.split.seed + ": train " + run.split.train.join(", ") + " · held out " + run.split.held_out.join(", ") }) : null,
    el("h2", { text: "Scores per iteration" }),
    chartBox(scoreChart(run)),
    el("div", { class: "legend" },
      legendItem("ic-train", "train score", "line"), legendItem("ic-held-out", "held-out pass^" + run.k, "line"),
      legendItem("ic-gate", "the seed's held-out pass^" + run.k + " (to beat)", "line"),
      el("span", { class: "legend-item", text: "◯ accepted · × no new candidate" })),
    el("h2", { text: accepted ? "Accepted changes" : "Changes" }),
    changeList(run),
    el("h2", { text: "Candidates" }),
    candidateTable(run)];
  detail.replaceChildren(...parts.filter(Boolean));
}

// x: the iteration (0 is the seed); y: the score. Train points are circles on a solid line, held-out points
// squares on a dashed one, so the two read apart without colour; iterations that made no candidate are ×.
const SCORE_CHART = { left: 58, right: 24, top: 18, bottom: 46, height: 300 };

function scoreChart(run) {
  const width = Math.max(600, Math.min(1100, (document.getElementById("detail").clientWidth || 900) - 50));
  const { left, right, top, bottom, height } = SCORE_CHART;
  const lastIteration = Math.max(1, ...run.iterations.map((each) => each.iteration));
  const x = linearScale(0, lastIteration, left, width - right);
  const y = linearScale(0, 1, height - bottom, top);
  const seed = run.candidates[0];
  const svg = svgEl("svg", { class: "score-chart", width, height, role: "group", "aria-labelledby": "score-chart-title" },
    svgEl("title", { id: "score-chart-title", text: "Train score and held-out pass^" + run.k + " per iteration of improvement run " + run.id }));
  for (const value of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(
      svgEl("line", { x1: left, x2: width - right, y1: y(value), y2: y(value), class: "grid" }),
      svgEl("text", { x: left - 8, y: y(value) + 4, class: "tick", "text-anchor": "end", text: value.toFixed(2) }));
  }
  for (const value of tickValues(0, lastIteration, Math.min(lastIteration, 12)).filter(Number.isInteger)) {
    svg.append(svgEl("text", { x: x(value), y: height - bottom + 18, class: "tick", "text-anchor": "middle", text: value === 0 ? "seed" : String(value) }));
  }
  svg.append(
    svgEl("text", { x: (left + width - right) / 2, y: height - 8, class: "axis-title", "text-anchor": "middle", text: "iteration" }),
    svgEl("text", { x: 14, y: (top + height - bottom) / 2, class: "axis-title", "text-anchor": "middle", transform: "rotate(-90 14 " + (top + height - bottom) / 2 + ")", text: "score" }));
  if (seed.held_out !== null) {
    svg.append(svgEl("line", { x1: left, x2: width - right, y1: y(seed.held_out), y2: y(seed.held_out), class: "ic-gate" }));
  }

  // One point per candidate, at the iteration that made it (the seed at 0).
  const points = run.candidates.map((candidate) => ({ candidate, at: x(candidate.iteration) }));
  const series = (name, value, marker) => {
    const shown = points.filter((point) => value(point.candidate) !== null);
    if (shown.length > 1) {
      svg.append(svgEl("polyline", { class: "ic-" + name, points: shown.map((point) => point.at + "," + y(value(point.candidate))).join(" ") }));
    }
    for (const point of shown) svg.append(marker(point, y(value(point.candidate))));
  };
  const candidateTip = (candidate) => {
    const made = run.iterations.find((each) => each.candidate === candidate.index);
    const lines = [
      candidate.index === 0 ? "the seed (the texts as they were)" : "iteration " + candidate.iteration + " · candidate " + candidate.index + (candidate.parents.length ? " (from " + candidate.parents.join(", ") + ")" : ""),
      "train " + score(candidate.train) + " · held-out pass^" + run.k + " " + (candidate.held_out === null ? "not measured" : score(candidate.held_out)),
    ];
    if (made && made.paths.length) lines.push("rewrote: " + made.paths.join(", "));
    if (candidate.gate) lines.push("gate: " + candidate.gate);
    return lines.join("\n");
  };
  series("train", (candidate) => candidate.train, (point, at) =>
    svgEl("circle", { cx: point.at, cy: at, r: 5, class: "ic-train-point", tabindex: 0, dataset: { candidate: String(point.candidate.index), series: "train", tip: candidateTip(point.candidate) } }));
  series("held-out", (candidate) => candidate.held_out, (point, at) =>
    svgEl("rect", { x: point.at - 5, y: at - 5, width: 10, height: 10, class: "ic-held-out-point", tabindex: 0, dataset: { candidate: String(point.candidate.index), series: "held-out", tip: candidateTip(point.candidate) } }));
  if (run.accepted) {
    const chosen = run.candidates.find((candidate) => candidate.index === run.accepted.candidate);
    if (chosen && chosen.held_out !== null) {
      svg.append(
        svgEl("circle", { cx: x(chosen.iteration), cy: y(chosen.held_out), r: 11, class: "ic-accepted", dataset: { tip: candidateTip(chosen) } }),
        svgEl("text", { x: x(chosen.iteration), y: y(chosen.held_out) - 15, class: "tick ic-accepted-label", "text-anchor": "middle", text: "accepted" }));
    }
  }
  for (const iteration of run.iterations) {
    if (iteration.candidate !== null) continue;
    const change = iteration.minibatch_before === null ? "" : " (minibatch " + score(iteration.minibatch_before) + " → " + score(iteration.minibatch_after) + ")";
    svg.append(svgEl("text", {
      x: x(iteration.iteration), y: height - bottom - 6, class: "ic-none", "text-anchor": "middle", text: "×", tabindex: 0,
      dataset: { iteration: String(iteration.iteration), tip: "iteration " + iteration.iteration + ": " + iteration.outcome + change + (iteration.paths.length ? "\ntried: " + iteration.paths.join(", ") : "") },
    }));
  }
  return svg;
}

function changeList(run) {
  if (!run.changes.length) {
    return el("div", { class: "empty", text: "No candidate beat the seed on the held-out tasks: there is nothing to apply." });
  }
  return el("div", {}, ...run.changes.map((change) =>
    el("div", { class: "change", dataset: { path: change.path } },
      el("div", { class: "change-path", text: change.path }),
      change.diff ? el("div", { class: "word-diff", "aria-label": "changes from the old text to the new" }, ...change.diff.map(([op, text]) =>
        op === "=" ? document.createTextNode(text) : el(op === "-" ? "del" : "ins", { text }))) : null,
      el("div", { class: "old-new" },
        el("div", {}, el("label", { text: "old" }), el("pre", { class: "old", text: change.old })),
        el("div", {}, el("label", { text: "new" }), el("pre", { class: "new", text: change.new }))))));
}

function candidateTable(run) {
  const table = el("table", { class: "candidates" },
    el("tr", {}, ...["Candidate", "Iteration", "From", "Train", "Held-out pass^" + run.k, "Held-out pass^1", "Gate"].map((h) => el("th", { text: h }))));
  for (const candidate of run.candidates) {
    table.append(el("tr", { dataset: { candidate: String(candidate.index) } },
      el("td", { text: candidate.index === 0 ? "0 (seed)" : String(candidate.index) }),
      el("td", { text: String(candidate.iteration) }),
      el("td", { text: candidate.parents.join(", ") || "–" }),
      el("td", { text: score(candidate.train) }),
      el("td", { text: score(candidate.held_out) }),
      el("td", { text: score(candidate.held_out_pass1) }),
      el("td", { class: "gate", text: candidate.gate || "–" })));
  }
  return table;
}
