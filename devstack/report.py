"""The chaos demo's report: one HTML file that needs no network, drawn from the histories.

The histories go into the page as JSON; a small inline script draws one SVG
timeline per strategy, naive beside fenced. Each order is a row; time runs
left to right. Faults are shaded across all rows; each answered write is a
dot (green: acknowledged; grey: refused with a 4xx; hollow: no answer); an
invoice write the logs name is a tick with its token (green: accepted; orange
cross: refused as stale or without the lock); each anomaly is a red ring,
numbered, and explained in a sentence under its timeline. The faults' colours
and legend come from the registry, `devstack.chaos.faults.FAULTS`.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from devstack.chaos.faults import FAULTS
from devstack.history import History

ANOMALY_COLOUR = "#d62728"

EXPLAIN = {
    "disagreeing": ("The order and its invoice no longer agree: a holder whose lock had run "
                    "out or been deleted wrote one of them after a newer holder did, and "
                    "nothing refused the late write."),
    "lost update": ("A change the service acknowledged was undone: a holder whose lock had "
                    "run out or been deleted wrote older values over it."),
    "stale write": ("The order holds a state no single call asked for, or went back in time: "
                    "two holders wrote it at once."),
}


def strategy_data(name: str, history: History) -> dict[str, Any]:
    """What the page draws for one strategy, from its history."""
    orders: dict[str, dict[str, list]] = {}

    def row(order: str) -> dict[str, list]:
        return orders.setdefault(order, {"ops": [], "writes": []})

    for event in history.events:
        if event["type"] in ("ok", "fail", "unknown"):
            row(event["order"])["ops"].append({
                key: event.get(key) for key in
                ("type", "f", "status", "error", "start", "end", "instance", "process")})
        elif event["type"] == "invoice_write":
            row(event["order"])["writes"].append({
                key: event.get(key) for key in
                ("token", "accepted", "reason", "current_token", "at")})
    anomalies = [{**event, "explain": event.get("explain") or EXPLAIN.get(event["kind"], "")}
                 for event in history.events if event["type"] == "anomaly"]
    phases = [{"name": event["name"], "at": event["at"]} for event in history.events
              if event["type"] == "phase"]
    times = [event.get("end", event.get("at", 0.0)) for event in history.events]
    return {"name": name, "orders": orders, "faults": history.faults, "anomalies": anomalies,
            "phases": phases, "tokens": any(row["writes"] for row in orders.values()),
            "end": max(times, default=1.0)}


def fault_legend() -> str:
    return "\n".join(f'<span><i style="background:{fault.colour}"></i>'
                     f'{html.escape(fault.legend)}</span>' for fault in FAULTS)


def write_report(path: Path, histories: dict[str, History], held: bool) -> Path:
    data = [strategy_data(name, history) for name, history in histories.items()]
    counts = ", ".join(f"{d['name']}: {len(d['anomalies'])} anomalies" for d in data)
    verdict = ("The demonstration held: the naive lock broke, the fenced one did not."
               if held else "The demonstration did not hold.")
    # "</" cannot end the script element early once escaped.
    payload = json.dumps(data).replace("</", "<\\/")
    fill = json.dumps({fault.kind: fault.colour for fault in FAULTS})
    path.write_text(PAGE.replace("@VERDICT@", html.escape(f"{verdict} ({counts})"))
                    .replace("@FAULT_LEGEND@", fault_legend()).replace("@FAULT_FILL@", fill)
                    .replace("@ANOMALY@", ANOMALY_COLOUR).replace("@DATA@", payload),
                    encoding="utf-8")
    return path


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>make chaos: naive lock vs fencing tokens</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
.verdict { margin: 0 0 10px; font-weight: 600; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 12px; vertical-align: middle;
            margin-right: 4px; border-radius: 6px; }
.panels { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
.panel h2 { font-size: 16px; margin: 8px 0; }
svg { width: 100%; height: auto; border: 1px solid #ddd; }
svg text { font: 9px sans-serif; fill: #444; }
ol.anomalies li { margin: 2px 0; }
ol.anomalies b { color: @ANOMALY@; }
p.none { color: #2ca02c; font-weight: 600; }
</style></head>
<body>
<h1><code>make chaos</code>: the same load and faults, naive lock vs fencing tokens</h1>
<p class="verdict">@VERDICT@</p>
<p class="legend">
@FAULT_LEGEND@
<span><i style="background:#2ca02c"></i>write acknowledged / invoice write accepted (token)</span>
<span><i style="background:#999"></i>refused (4xx)</span>
<span><i style="background:#ff7f0e"></i>stale invoice write refused</span>
<span><i style="border:2px solid @ANOMALY@;width:8px;height:8px"></i>anomaly</span>
</p>
<div class="panels" id="panels"></div>
<script type="application/json" id="data">@DATA@</script>
<script>
"use strict";
const NS = "http://www.w3.org/2000/svg";
const FAULT_FILL = @FAULT_FILL@;
const W = 640, LEFT = 64, ROW = 13, TOP = 22;

function el(tag, attrs, parent, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}
function titled(node, text) { el("title", {}, node, text); return node; }

function draw(strategy, panel) {
  const anomalous = new Set(strategy.anomalies.map(a => a.order));
  const ids = Object.keys(strategy.orders).sort((a, b) =>
    (anomalous.has(b) - anomalous.has(a)) || a.localeCompare(b));
  const height = TOP + ROW * ids.length + 24;
  const x = t => LEFT + (W - LEFT - 10) * Math.max(0, t) / strategy.end;
  const y = i => TOP + ROW * i + ROW / 2;
  const svg = el("svg", {viewBox: `0 0 ${W} ${height}`, "data-strategy": strategy.name},
                 panel);
  for (const f of strategy.faults) {
    titled(el("rect", {class: "fault", x: x(f.start), y: TOP - 4,
                       width: Math.max(1.5, x(f.end) - x(f.start)), height: ROW * ids.length + 4,
                       fill: FAULT_FILL[f.kind] || "#eee", opacity: 0.8}, svg),
           `${f.kind} ${f.target}, ${f.start.toFixed(2)}-${f.end.toFixed(2)} s: ${f.note}`);
  }
  for (const p of strategy.phases) {
    el("line", {class: "phase", x1: x(p.at), x2: x(p.at), y1: 2, y2: height - 4,
                stroke: "#888", "stroke-dasharray": "3 2"}, svg);
    el("text", {x: x(p.at) + 2, y: height - 6}, svg, p.name);
  }
  for (let s = 0; s <= strategy.end; s += Math.max(1, Math.round(strategy.end / 10))) {
    el("text", {x: x(s), y: TOP - 8, "text-anchor": "middle"}, svg, `${s}s`);
  }
  ids.forEach((id, i) => {
    const order = strategy.orders[id];
    el("text", {x: 2, y: y(i) + 3}, svg, id.slice(0, 8));
    el("line", {x1: LEFT, x2: W - 10, y1: y(i), y2: y(i), stroke: "#eee"}, svg);
    for (const op of order.ops) {
      const cls = {"ok": "op-ok", "fail": "op-fail", "unknown": "op-unknown"}[op.type];
      const fill = op.type === "ok" ? "#2ca02c" : op.type === "fail" ? "#999" : "none";
      titled(el("circle", {class: cls, cx: x(op.end), cy: y(i), r: 2.2, fill: fill,
                           stroke: op.type === "unknown" ? "#999" : "none"}, svg),
             `${op.f} via ${op.instance}: ${op.status === null ? "no answer" : op.status}` +
             `${op.error ? " " + op.error : ""} (${op.start.toFixed(2)}-${op.end.toFixed(2)} s)`);
    }
    let lastLabel = -1e9;
    for (const w of order.writes) {
      const wx = x(w.at);
      if (w.accepted) {
        titled(el("line", {class: "accepted", x1: wx, x2: wx, y1: y(i) - 5, y2: y(i) + 5,
                           stroke: "#2ca02c", "stroke-width": 1.2}, svg),
               `invoice write accepted with token ${w.token} at ${w.at.toFixed(2)} s`);
        if (wx - lastLabel > 16) {
          el("text", {class: "token", x: wx + 1, y: y(i) - 1}, svg, String(w.token));
          lastLabel = wx;
        }
      } else {
        const g = titled(el("g", {class: "refused", stroke: "#ff7f0e", "stroke-width": 1.5},
                            svg),
                         `invoice write with token ${w.token} refused (${w.reason}` +
                         `${w.current_token ? ", accepted " + w.current_token : ""}) at ` +
                         `${w.at.toFixed(2)} s`);
        el("line", {x1: wx - 3, x2: wx + 3, y1: y(i) - 3, y2: y(i) + 3}, g);
        el("line", {x1: wx - 3, x2: wx + 3, y1: y(i) + 3, y2: y(i) - 3}, g);
      }
    }
  });
  const list = document.createElement("ol");
  list.className = "anomalies";
  strategy.anomalies.forEach((a, n) => {
    const i = ids.indexOf(a.order);
    const ax = x(a.at);
    titled(el("circle", {class: "anomaly", cx: ax, cy: y(i), r: 6, fill: "none",
                         stroke: "@ANOMALY@", "stroke-width": 2.5}, svg), a.detail);
    el("text", {x: ax - 10, y: y(i) + 3, "text-anchor": "end", fill: "@ANOMALY@",
                style: "fill:@ANOMALY@;font-weight:bold"}, svg, String(n + 1));
    const item = document.createElement("li");
    item.innerHTML = "<b></b> ";
    item.firstChild.textContent = a.kind;
    item.appendChild(document.createTextNode(` order ${a.order.slice(0, 8)}: ${a.detail}. ` +
                                             a.explain));
    list.appendChild(item);
  });
  if (strategy.anomalies.length === 0) {
    const none = document.createElement("p");
    none.className = "none";
    none.textContent = "No anomaly: every order and its invoice agree, and no acknowledged " +
                       "write was undone; every stale write was refused.";
    panel.appendChild(none);
  } else {
    panel.appendChild(list);
  }
}

const data = JSON.parse(document.getElementById("data").textContent);
for (const strategy of data) {
  const panel = document.createElement("section");
  panel.className = "panel";
  panel.id = strategy.name.split(" ")[0];
  const title = document.createElement("h2");
  title.textContent = `${strategy.name}: ${strategy.anomalies.length} anomalies, ` +
                      `${strategy.faults.length} faults`;
  panel.appendChild(title);
  if (!strategy.tokens) {
    const note = document.createElement("p");
    note.textContent = "No tokens here: the naive lock issues none, and its invoice " +
                       "service logs no refusal. The dots are the answers the clients got.";
    panel.appendChild(note);
  }
  document.getElementById("panels").appendChild(panel);
  draw(strategy, panel);
}
document.body.setAttribute("data-drawn", "1");
</script>
</body></html>
"""
