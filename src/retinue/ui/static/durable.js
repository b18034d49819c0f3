// The durable runs pages: the journal's runs in their state (running, waiting for approval, interrupted,
// decided, finished), and one run's spending, approvals and Resume button. A resumed run goes on in the UI's
// own server; its trace (the Runs page) shows it live. The journal writes nothing the stream would notice
// when a process dies, so these pages poll while they are shown.
"use strict";

const durableState = { listing: null, selected: null, detail: null, missing: null, refreshing: false, resumeErrors: new Map() };

async function showDurableRuns(runId) {
  if (durableState.selected !== runId) { durableState.detail = null; durableState.missing = null; }
  durableState.selected = runId;
  renderDurableRun();
  await refreshDurable();
}

async function refreshDurable() {
  if (durableState.refreshing) return;
  durableState.refreshing = true;
  try {
    await refreshDurableList();
    const runId = durableState.selected;
    if (!runId) return;
    try {
      const detail = await api("/api/durable/" + encodeURIComponent(runId));
      if (durableState.selected !== runId) return; // another run was picked meanwhile
      durableState.detail = detail;
      durableState.missing = null;
    } catch (error) {
      if (durableState.selected !== runId) return;
      durableState.detail = null;
      durableState.missing = error.message;
    }
    renderDurableRun();
  } finally {
    durableState.refreshing = false;
  }
}

async function refreshDurableList() {
  try {
    durableState.listing = await api("/api/durable");
    renderDurableList();
  } catch (error) {
    document.getElementById("durable-list").replaceChildren(el("div", { class: "errtext", text: error.message }));
  }
}

setInterval(() => { if (state.view === "durable") refreshDurable(); }, 1000);

function durablePill(run) {
  const kind = run.state === "done" ? run.status : run.state === "waiting" ? "pending" : run.state;
  return el("span", { class: "pill durable-state " + kind, title: run.note },
    run.state === "running" ? [el("span", { class: "spin" }), " " + run.label] : run.label);
}

function renderDurableList() {
  if (state.view !== "durable") return;
  const list = document.getElementById("durable-list");
  const listing = durableState.listing;
  list.replaceChildren();
  if (listing.journal) list.append(el("div", { class: "journal-where", text: "journal: " + listing.journal }));
  if (listing.problem) list.append(el("div", { class: "empty journal-problem", text: listing.problem }));
  else if (!listing.runs.length) list.append(el("div", { class: "empty", text: "No durable runs in this journal yet." }));
  for (const run of listing.runs) {
    const selected = run.run_id === durableState.selected ? " selected" : "";
    list.append(
      el("a", { class: "run-item report-item" + selected, href: "#durable=" + encodeURIComponent(run.run_id), dataset: { runId: run.run_id } },
        el("div", { class: "top" }, el("span", { class: "agent", text: run.agent }), durablePill(run)),
        el("div", { class: "meta" },
          el("span", { text: run.run_id }),
          el("span", { text: turns(run.turns) }),
          el("span", { class: "cost", text: dollars(run.paid.cost_usd) }),
          el("span", { text: ago(run.updated_at) })),
        el("div", { class: "prompt", text: run.prompt })));
  }
}

function renderDurableRun() {
  if (state.view !== "durable") return;
  const detail = document.getElementById("detail");
  const runId = durableState.selected;
  if (!runId) { detail.replaceChildren(el("div", { class: "empty", text: "Select a durable run." })); return; }
  if (durableState.missing) { detail.replaceChildren(el("div", { class: "empty errtext", text: durableState.missing })); return; }
  const run = durableState.detail;
  if (!run) { detail.replaceChildren(el("div", { class: "empty", text: "Loading…" })); return; }
  const replayed = run.replayed.requests;
  const parts = [
    el("div", { class: "run-header" },
      el("span", { class: "title", text: run.agent }), durablePill(run),
      el("span", { class: "num", text: "durable run " + run.run_id }),
      run.traced ? el("a", { class: "trace-link", href: "#run=" + encodeURIComponent(run.run_id) }, "Open its trace") : null),
    el("div", { class: "stats" },
      stat("Turns done", String(run.turns), "turns"),
      stat("Cost so far", dollars(run.paid.cost_usd), "cost"),
      stat("Tokens", tokens(run.paid.input_tokens) + " in / " + tokens(run.paid.output_tokens) + " out", "tokens"),
      stat("Replayed free", replayed + (replayed === 1 ? " call" : " calls"), "replayed"),
      stat("Started", new Date(run.started_at * 1000).toLocaleString(), "started"),
      stat("Updated", ago(run.updated_at), "updated")),
    el("div", { class: "durable-note", text: run.note }),
    resumeBar(run),
    el("h2", { text: "Prompt" }),
    el("div", { class: "prompt-box", text: run.prompt })];
  if (run.approvals.length) parts.push(el("h2", { text: "Approvals" }), approvalTable(run.approvals));
  if (run.definition_changes.length) {
    parts.push(el("h2", { text: "Definition changes allowed on resumes" }),
      el("ul", {}, ...run.definition_changes.map((change) => el("li", { text: change }))));
  }
  detail.replaceChildren(...parts.filter(Boolean));
}

function resumeBar(run) {
  const bar = el("div", { class: "resume-bar" });
  if (run.resumable && !run.resume_problem) {
    const button = el("button", { class: "primary", title: "Go on with the run in this UI's server, as " + run.resume_by }, "Resume");
    button.addEventListener("click", () => resume(run.run_id, button));
    bar.append(button, el("span", { class: "num", text: "with " + run.resume_by }));
  } else if (run.resume_problem) {
    bar.append(el("span", { class: "errtext resume-problem", text: run.resume_problem }));
  }
  if (run.resumed_here) bar.append(el("span", { class: "num resumed-here", text: "Resumed here: " + run.resumed_here }));
  const failed = durableState.resumeErrors.get(run.run_id);
  if (failed) bar.append(el("div", { class: "errtext resume-error", text: failed }));
  return bar.childNodes.length ? bar : null;
}

async function resume(runId, button) {
  button.disabled = true;
  button.textContent = "Resuming…";
  durableState.resumeErrors.delete(runId);
  try {
    await post("/api/durable/" + encodeURIComponent(runId) + "/resume", {});
  } catch (error) {
    durableState.resumeErrors.set(runId, error.message);
  }
  await refreshDurable();
}

function approvalTable(approvals) {
  const table = el("table", { class: "durable-approvals" },
    el("tr", {}, ...["Agent", "Tool", "Arguments", "Asked", "Decision"].map((h) => el("th", { text: h }))));
  for (const approval of approvals) {
    const decision = approval.approved === null
      ? el("code", { text: approval.decide + " (or --no)" })
      : el("span", { class: "pill " + (approval.approved ? "approved" : "denied"), text: (approval.approved ? "approved" : "denied") + (approval.decided_by ? " by " + approval.decided_by : "") });
    table.append(el("tr", {},
      el("td", { text: approval.agent }), el("td", { text: approval.tool }),
      el("td", { class: "io", text: JSON.stringify(approval.arguments) }),
      el("td", { text: ago(approval.asked_at) }), el("td", {}, decision)));
  }
  return table;
}
