// What every chart of the UI shares: SVG elements, linear scales, tick values, and the hover tip.
// Charts are plain inline SVG built here; trace and report text goes in with textContent only.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) if (child) node.append(child);
  return node;
}

// A title element: the accessible name of its parent, and the browser's own tooltip where ours is not shown.
const svgTitle = (text) => svgEl("title", { text });

function linearScale(from, to, start, end) {
  const span = to - from || 1;
  return (value) => start + ((value - from) / span) * (end - start);
}

// Round tick values (1, 2 or 5 times a power of ten) from `from` to `to`, about `count` of them.
function tickValues(from, to, count) {
  const raw = (to - from) / Math.max(1, count);
  if (!(raw > 0)) return [from];
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= raw);
  const values = [];
  for (let value = Math.ceil(from / step - 1e-9) * step; value <= to + step * 1e-9; value += step) {
    values.push(Number(value.toPrecision(12)));
  }
  return values;
}

// The one tip of the page: the `data-tip` text of the chart mark under the pointer or keyboard focus. Listened
// for on the document, not per chart, so a chart redrawn under a resting pointer keeps its tip working.
function showTip(target, x, y) {
  const tip = document.getElementById("tip");
  tip.textContent = target.dataset.tip;
  tip.hidden = false;
  const width = tip.offsetWidth;
  const height = tip.offsetHeight;
  tip.style.left = Math.max(4, Math.min(x + 14, window.innerWidth - width - 8)) + "px";
  tip.style.top = (y + 16 + height > window.innerHeight ? y - height - 10 : y + 16) + "px";
}

function hideTip() {
  document.getElementById("tip").hidden = true;
}

const tipTarget = (event) => (event.target instanceof Element ? event.target.closest("svg [data-tip]") : null);
document.addEventListener("mousemove", (event) => {
  const target = tipTarget(event);
  if (target) showTip(target, event.clientX, event.clientY);
  else hideTip();
});
document.addEventListener("focusin", (event) => {
  const target = tipTarget(event);
  if (!target) return;
  const box = target.getBoundingClientRect();
  showTip(target, box.left, box.bottom);
});
document.addEventListener("focusout", hideTip);

// A legend entry: a small swatch drawn with the same classes as the chart's marks, then its name.
function legendItem(swatchClass, label, shape) {
  const swatch = svgEl("svg", { width: 22, height: 12, "aria-hidden": "true" },
    shape === "line"
      ? svgEl("line", { x1: 1, y1: 6, x2: 21, y2: 6, class: swatchClass })
      : svgEl("rect", { x: 1, y: 1, width: 20, height: 10, rx: 2, class: swatchClass }));
  return el("span", { class: "legend-item" }, swatch, label);
}
