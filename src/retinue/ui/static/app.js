// The retinue UI: renders what /api/stream pushes. Every piece of trace text is
// set with textContent, never as HTML, since traces hold model and tool output.
"use strict";

const state = { view: "runs", runs: [], selected: null, tree: null, stream: null, openIO: new Set() };

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const tokens = (n) => (n < 10000 ? String(n) : n < 1e6 ? (n / 1000).toFixed(1) + "k" : (n / 1e6).toFixed(2) + "M");
const dollars = (c) => (c === null || c === undefined ? "$?" : c === 0 ? "$0" : c < 1 ? "$" + c.toFixed(4) : "$" + c.toFixed(2));
const turns = (n) => n + (n === 1 ? " turn" : " turns");
function seconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 1) return Math.round(s * 1000) + "ms";
  if (s < 120) return s.toFixed(1) + "s";
  return (s / 60).toFixed(1) + "m";
}
function ago(t) {
  const s = Date.now() / 1000 - t;
  if (s < 60) return Math.max(0, Math.round(s)) + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  if (s < 86400) return Math.round(s / 3600) + "h ago";
  return new Date(t * 1000).toLocaleDateString();
}
const shortId = (id) => id.slice(0, 8);
const INTERRUPTED = "The process recording this run ended before the run finished: it will not continue, and its approvals can no longer be answered.";
function statusPill(status) {
  if (status === "interrupted") return el("span", { class: "pill interrupted", title: INTERRUPTED }, "interrupted");
  return el("span", { class: "pill " + status }, status === "running" ? [el("span", { class: "spin" }), " running"] : status);
}
function oneLine(text, width) {
  const flat = String(text).replace(/\s+/g, " ").trim();
  return flat.length <= width ? flat : flat.slice(0, width - 1) + "…";
}

async function api(path, options) {
  const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  const text = await response.text();
  if (!response.ok) throw new Error(text || response.statusText);
  return JSON.parse(text);
}
function post(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json", "X-Retinue": "1" }, body: JSON.stringify(body) });
}

// -- live connection -----------------------------------------------------------------------------

function connect() {
  if (state.stream) state.stream.close();
  const query = state.selected ? "?run=" + encodeURIComponent(state.selected) : "";
  const stream = new EventSource("/api/stream" + query);
  state.stream = stream;
  stream.addEventListener("open", () => setLive(true));
  stream.addEventListener("error", () => setLive(false));
  stream.addEventListener("runs", (event) => { state.runs = JSON.parse(event.data).runs; renderRuns(); });
  stream.addEventListener("tree", (event) => { state.tree = JSON.parse(event.data); renderDetail(); });
}
function setLive(on) {
  document.getElementById("live-dot").classList.toggle("on", on);
  document.getElementById("live-text").textContent = on ? "live" : "reconnecting…";
}
function select(runId) {
  if (state.selected === runId) return;
  state.selected = runId;
  state.tree = null;
  history.replaceState(null, "", "#run=" + encodeURIComponent(runId));
  closeDrawer();
  renderRuns();
  renderDetail();
  connect();
}

// -- the run list --------------------------------------------------------------------------------

function renderRuns() {
  const list = document.getElementById("runs");
  list.replaceChildren();
  if (!state.runs.length) list.append(el("div", { class: "empty", text: "No runs yet." }));
  for (const run of state.runs) {
    list.append(
      el("div", { class: "run-item" + (run.run_id === state.selected ? " selected" : ""), dataset: { runId: run.run_id }, onclick: () => select(run.run_id) },
        el("div", { class: "top" }, el("span", { class: "agent", text: run.agent }), statusPill(run.status)),
        el("div", { class: "meta" },
          el("span", { text: shortId(run.run_id) }),
          el("span", { text: turns(run.turns) }),
          el("span", { class: "tokens", text: tokens(run.total_usage.input_tokens + run.total_usage.output_tokens) + " tok" }),
          el("span", { class: "cost", text: dollars(run.total_usage.cost_usd) }),
          el("span", { text: ago(run.started_at) })),
        el("div", { class: "prompt", text: run.prompt })));
  }
}

// -- the selected run ----------------------------------------------------------------------------

function renderDetail() {
  if (state.view !== "runs") return;
  const detail = document.getElementById("detail");
  const scroll = detail.scrollTop;
  detail.replaceChildren();
  if (!state.selected) { detail.append(el("div", { class: "empty", text: "Select a run." })); return; }
  if (!state.tree) { detail.append(el("div", { class: "empty", text: "Loading…" })); return; }
  const { tree, usage_by_agent: perAgent, pending } = state.tree;
  const run = tree.run;
  const total = run.total_usage;
  detail.append(
    el("div", { class: "run-header" },
      el("span", { class: "title", text: run.agent }), statusPill(run.status),
      el("span", { class: "num", text: "run " + shortId(run.run_id) + " · " + run.model_id })),
    el("div", { class: "stats" },
      stat("Tokens in", tokens(total.input_tokens), "tokens-in"),
      stat("Tokens out", tokens(total.output_tokens), "tokens-out"),
      stat("Cost", dollars(total.cost_usd), "cost"),
      stat("Model calls", String(total.requests), "calls"),
      stat("Elapsed", run.status === "running" ? seconds(Date.now() / 1000 - run.started_at) : seconds(run.duration_seconds), "elapsed", run.status === "running" ? run.started_at : null)),
    el("div", { class: "prompt-box", text: run.prompt }));
  if (run.status === "interrupted") detail.append(el("div", { class: "interrupted-note", text: INTERRUPTED }));
  if (pending.length) {
    detail.append(el("h2", { text: "Waiting for your approval" }));
    for (const approval of pending) detail.append(approvalCard(approval));
  }
  const timeline = el("div", { class: "timeline-box", id: "timeline" });
  detail.append(el("h2", { text: "Timeline" }), timeline);
  drawTimeline(timeline, tree);
  detail.append(el("h2", { text: "Cost per agent" }), agentTable(perAgent));
  detail.append(el("h2", { text: "Agent tree" }), runNode(tree));
  detail.scrollTop = scroll;
}

function stat(label, value, name, startedAt) {
  return el("div", { class: "stat", dataset: { stat: name } },
    el("div", { class: "label", text: label }),
    el("div", { class: "value", text: value, dataset: startedAt ? { startedAt: String(startedAt) } : undefined }));
}

function approvalCard(approval) {
  const buttons = el("span", {});
  const decide = async (approved) => {
    for (const button of buttons.querySelectorAll("button")) button.disabled = true;
    try {
      await post("/api/approvals", { run_id: approval.run_id, tool_call_id: approval.tool_call_id, approved, reason: approved ? "approved in the UI" : "denied in the UI" });
      buttons.replaceChildren(el("span", { class: "pill " + (approved ? "approved" : "denied"), text: approved ? "approved" : "denied" }));
    } catch (error) {
      buttons.replaceChildren(el("span", { class: "errtext", text: error.message }));
    }
  };
  if (approval.decision !== null) {
    buttons.append(el("span", { class: "pill " + (approval.decision ? "approved" : "denied"), text: (approval.decision ? "approved" : "denied") + ", resuming…" }));
  } else {
    buttons.append(
      el("button", { class: "approve", onclick: () => decide(true) }, "Approve"), " ",
      el("button", { class: "deny", onclick: () => decide(false) }, "Deny"));
  }
  return el("div", { class: "approval", dataset: { toolCallId: approval.tool_call_id } },
    el("div", { class: "what" },
      el("div", {}, el("b", { text: approval.agent }), " wants to call ", el("code", { text: approval.tool })),
      el("div", { class: "io", text: JSON.stringify(approval.arguments, null, 2) })),
    buttons);
}

function agentTable(perAgent) {
  const table = el("table", {},
    el("tr", {}, ...["Agent", "Runs", "Calls", "Input", "Output", "Cost", "Model time", "Tools", "Tool time"].map((h) => el("th", { text: h }))));
  for (const entry of perAgent) {
    table.append(el("tr", {},
      el("td", { text: entry.agent }), el("td", { text: entry.runs }), el("td", { text: entry.model_calls }),
      el("td", { text: tokens(entry.usage.input_tokens) }), el("td", { text: tokens(entry.usage.output_tokens) }),
      el("td", { text: dollars(entry.usage.cost_usd) }), el("td", { text: seconds(entry.model_seconds) }),
      el("td", { text: entry.tool_calls }), el("td", { text: seconds(entry.tool_seconds) })));
  }
  return table;
}

function runNode(node) {
  const run = node.run;
  const children = new Map(node.children.map((child) => [child.run.run_id, child]));
  const shown = new Set();
  const box = el("div", { class: "node" + (run.status === "running" ? " running" : ""), dataset: { runId: run.run_id } },
    el("div", { class: "node-head" },
      el("span", { class: "agent", text: run.agent }),
      run.kind ? el("span", { class: "pill", text: run.kind }) : null,
      statusPill(run.status),
      el("span", { class: "num", text: turns(run.turns) + " · " + tokens(run.total_usage.input_tokens) + " in / " + tokens(run.total_usage.output_tokens) + " out · " + dollars(run.total_usage.cost_usd) })));
  if (run.parent_run_id) box.append(el("div", { class: "io" }, el("span", { class: "k", text: "task: " }), oneLine(run.prompt, 300)));
  const interrupted = run.status === "interrupted";
  for (const step of node.steps) {
    if (step.kind === "model_call") box.append(chatStep(step, interrupted));
    else {
      box.append(toolStep(step, interrupted));
      for (const childId of step.child_run_ids) {
        const child = children.get(childId);
        if (child) { shown.add(childId); box.append(runNode(child)); }
      }
    }
  }
  for (const [childId, child] of children) if (!shown.has(childId)) box.append(runNode(child));
  if (run.output !== null) box.append(el("div", { class: "answer" }, el("b", { text: "Answer: " }), run.output));
  if (run.error) box.append(el("div", { class: "errtext", text: "Stopped: " + run.error }));
  for (const notice of node.notices) box.append(el("div", { class: "notice", text: "⚑ " + notice.kind + ": " + notice.message }));
  return box;
}

// `interrupted`: the run's process ended, so a step still open will never finish (no spinner for it).
function chatStep(call, interrupted) {
  const parts = [];
  let summary;
  if (call.response) {
    const message = call.response.message;
    if (message.text) parts.push("“" + oneLine(message.text, 120) + "”");
    for (const toolCall of message.tool_calls) parts.push("→ " + toolCall.name);
    summary = parts.join("  ");
  } else summary = call.error ? "failed: " + call.error : null;
  const usage = call.usage;
  return el("div", { class: "step chat", dataset: { callId: String(call.id) }, onclick: () => openCall(call.id), title: "Show the exact request and response" },
    el("div", { class: "line" },
      el("span", { class: "kind", text: "chat" }),
      el("span", { class: "name", text: "#" + call.id }),
      summary === null ? (interrupted ? el("span", { class: "errtext", text: "interrupted" }) : el("span", {}, el("span", { class: "spin" }), " waiting for " + call.model_id))
        : el("span", { class: call.error ? "errtext" : "", text: summary }),
      el("span", { class: "num", text: usage ? tokens(usage.input_tokens) + " in / " + tokens(usage.output_tokens) + " out · " + dollars(usage.cost_usd) + " · " + seconds(call.duration_seconds) : "" })));
}

function toolStep(call, interrupted) {
  const failed = call.is_error === true;
  const key = "tool-" + call.id;
  const args = call.invalid_arguments || JSON.stringify(call.arguments);
  const open = state.openIO.has(key);
  const io = el("div", { class: "io" },
    el("div", {}, el("span", { class: "k", text: "in:  " }), open ? JSON.stringify(call.arguments, null, 2) : oneLine(args, 160)),
    call.result === null ? el("div", {}, el("span", { class: "k", text: "out: " }), interrupted ? "interrupted" : [el("span", { class: "spin" }), " running"])
      : el("div", { class: failed ? "errtext" : "" }, el("span", { class: "k", text: "out: " }), open ? call.result : oneLine(call.result, 160)));
  const approval = call.approval;
  return el("div", { class: "step tool" + (failed ? " failed" : ""), dataset: { toolCallId: call.tool_call_id }, onclick: () => { state.openIO.has(key) ? state.openIO.delete(key) : state.openIO.add(key); renderDetail(); } },
    el("div", { class: "line" },
      el("span", { class: "kind", text: "tool" }),
      el("span", { class: "name", text: call.name }),
      approval ? el("span", { class: "pill " + approval.status, text: "approval: " + approval.status }) : null,
      el("span", { class: "num", text: call.result === null ? "" : seconds(call.duration_seconds) })),
    io);
}

// -- a model call's request and response, and replay ---------------------------------------------

function closeDrawer() { document.getElementById("drawer").classList.remove("open"); }

async function openCall(callId) {
  const drawer = document.getElementById("drawer");
  drawer.replaceChildren(el("div", { class: "empty", text: "Loading call #" + callId + "…" }));
  drawer.classList.add("open");
  let data;
  try { data = await api("/api/calls/" + callId); } catch (error) { drawer.replaceChildren(el("div", { class: "errtext", text: error.message })); return; }
  const call = data.call;
  const request = call.request;
  drawer.replaceChildren(
    el("button", { class: "close", onclick: closeDrawer }, "Close"),
    el("h3", { text: "Model call #" + call.id + " · " + call.agent + " · turn " + call.turn }),
    el("div", { class: "num", text: call.model_id + (call.usage ? " · " + call.usage.input_tokens + " in / " + call.usage.output_tokens + " out · " + dollars(call.usage.cost_usd) + " · " + seconds(call.duration_seconds) : "") }),
    el("h2", { text: "Response" }),
    el("div", { class: "msg" }, el("div", { class: "role", text: "assistant" }), el("pre", { text: data.answer.join("\n") })),
    el("h2", { text: "Request as sent" }),
    el("div", { class: "msg" }, el("div", { class: "role", text: "instructions" }), el("pre", { text: request.instructions || "(none)" })),
    ...request.messages.map(messageBlock),
    el("div", { class: "msg" }, el("div", { class: "role", text: "tools" }), el("pre", { text: request.tools.map((t) => t.name + ": " + t.description).join("\n") || "(none)" })),
    replayForm(call));
}

function messageBlock(message) {
  let text;
  if (message.role === "user") text = message.content;
  else if (message.role === "assistant") {
    text = [message.text, ...message.tool_calls.map((c) => "→ " + c.name + "(" + (c.invalid_arguments || JSON.stringify(c.arguments)) + ")")].filter(Boolean).join("\n");
  } else text = message.results.map((r) => (r.is_error ? "✗ " : "= ") + r.name + ": " + r.content).join("\n");
  return el("div", { class: "msg" }, el("div", { class: "role", text: message.role }), el("pre", { text }));
}

function replayForm(call) {
  const request = call.request;
  const model = el("input", { type: "text", placeholder: call.model_id + " (as recorded)", name: "model" });
  const instructions = el("textarea", { name: "instructions" });
  instructions.value = request.instructions;
  const descriptions = request.tools.map((tool) => {
    const area = el("textarea", { name: "tool:" + tool.name });
    area.value = tool.description;
    return [tool, area];
  });
  const output = el("div", { class: "replay-output" });
  const button = el("button", { class: "primary", onclick: async () => {
    button.disabled = true;
    output.replaceChildren(el("span", {}, el("span", { class: "spin" }), " replaying…"));
    const edits = {};
    for (const [tool, area] of descriptions) if (area.value !== tool.description) edits[tool.name] = area.value;
    try {
      const result = await post("/api/calls/" + call.id + "/replay", {
        model: model.value.trim() || null,
        instructions: instructions.value !== request.instructions ? instructions.value : null,
        tool_descriptions: edits,
      });
      if (result.error) throw new Error(result.error);
      const diff = el("div", { class: "diff" });
      if (!result.diff) diff.append("Same answer and tool calls as recorded.");
      for (const line of result.diff.split("\n").filter(Boolean)) {
        const change = line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : "";
        diff.append(el("span", { class: change, text: line }));
      }
      output.replaceChildren(
        el("label", { text: "New response from " + result.model_id }),
        el("div", { class: "msg" }, el("pre", { text: result.answer.join("\n") })),
        el("label", { text: "Diff against the recorded response" }), diff);
      output.scrollIntoView({ block: "nearest" });
    } catch (error) {
      output.replaceChildren(el("div", { class: "errtext", text: error.message }));
    } finally {
      button.disabled = false;
    }
  } }, "Replay this call");
  return el("div", {},
    el("h2", { text: "Replay" }),
    el("label", { text: "Model" }), model,
    el("label", { text: "Instructions" }), instructions,
    ...descriptions.map(([tool, area]) => [el("label", { text: "Description of " + tool.name }), area]).flat(),
    el("div", { style: "margin-top:10px" }, button),
    output);
}

// -- start ---------------------------------------------------------------------------------------

function redrawTimeline() {
  const box = document.getElementById("timeline");
  if (box && state.tree) drawTimeline(box, state.tree.tree);
}
setInterval(() => {
  for (const node of document.querySelectorAll("[data-started-at]")) node.textContent = seconds(Date.now() / 1000 - Number(node.dataset.startedAt));
  // A live run's bars end at "now": redrawn between stream updates, they grow as the run goes on.
  if (state.tree && state.tree.tree.run.status === "running") redrawTimeline();
}, 500);
window.addEventListener("resize", redrawTimeline);

// -- pages ---------------------------------------------------------------------------------------

// The address says the page: "#run=ID" (or nothing) for runs, "#evals" and "#eval=ID" for eval reports,
// "#improve" and "#improve=ID" for improvement runs, "#durable" and "#durable=ID" for durable runs.
const PAGES = {
  evals: { list: "#evals", item: "#eval=", title: "eval reports", show: showEvals },
  improve: { list: "#improve", item: "#improve=", title: "improvement runs", show: showImprovementRuns },
  durable: { list: "#durable", item: "#durable=", title: "durable runs", show: showDurableRuns },
};

function decoded(text) {
  try { return decodeURIComponent(text); } catch (error) { return text; } // a hand-typed stray "%"
}

function route() {
  const hash = location.hash;
  let view = "runs";
  let id = null;
  for (const [name, page] of Object.entries(PAGES)) {
    if (hash === page.list) view = name;
    else if (hash.startsWith(page.item)) { view = name; id = decoded(hash.slice(page.item.length)); }
  }
  const changed = view !== state.view;
  state.view = view;
  for (const link of document.querySelectorAll("header nav a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const name of ["runs", ...Object.keys(PAGES)]) document.getElementById("side-" + name).hidden = view !== name;
  closeDrawer();
  hideTip();
  if (view !== "runs") {
    document.title = "retinue · " + PAGES[view].title;
    PAGES[view].show(id);
    return;
  }
  document.title = "retinue · runs";
  // Any run id: a durable run's is whatever its starter chose ("trip-42"), not only hex.
  const runId = hash.startsWith("#run=") ? decoded(hash.slice("#run=".length)) : null;
  if (runId && runId !== state.selected) select(runId);
  else if (changed) renderDetail();
}

document.getElementById("where").textContent = location.host;
window.addEventListener("hashchange", route);
route();
if (!state.stream) connect();
