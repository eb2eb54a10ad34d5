// The master's web UI: hash-routed pages over the master's and agents' public JSON APIs.
// Each page polls what it shows; a poll waits at least 20x its own duration before the next,
// so a slow (big) answer is asked for less often and the UI's load on the master stays small.

const $ = (sel, root = document) => root.querySelector(sel);
const RES = ["cpus", "mem", "disk", "gpus"];
const TERMINAL = new Set(["TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR",
  "TASK_DROPPED", "TASK_GONE", "TASK_GONE_BY_OPERATOR"]);
const HISTORY_KEY = "corral.master.history";
const HOUR = 3600;

function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function h(html) { const t = document.createElement("template"); t.innerHTML = html.trim(); return t.content.firstElementChild; }
function fmtRes(name, v) {
  v = Number(v || 0);
  if (name === "mem" || name === "disk") return v >= 1024 ? (v / 1024).toFixed(1) + " GB" : Math.round(v) + " MB";
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}
function ago(t) {
  if (!t) return "";
  const s = Math.max(0, Date.now() / 1000 - t);
  return s < 60 ? `${Math.round(s)} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${(s / 3600).toFixed(1)} h ago`;
}
function when(t) { return t ? new Date(t * 1000).toLocaleString() : ""; }
function agentBase(agent) {
  const m = /@(.+)$/.exec(agent.pid || "");
  return `http://${m ? m[1] : agent.hostname + ":" + agent.port}`;
}

class Standby extends Error {}

// Agents are read straight from the browser (they answer any origin, without credentials).
async function agentJson(url) {
  const r = await fetch(url);
  if (r.status === 401 || r.status === 403)
    throw new Error(`The agent asks for HTTP authentication, which this page cannot pass on across origins: open ${url} directly.`);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

async function api(path, opts = {}) {
  const r = await fetch(path, { redirect: "manual", headers: { Accept: "application/json" }, ...opts });
  if (r.type === "opaqueredirect" || r.status === 307) throw new Standby(path);
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
}

// ---------------------------------------------------------------- polling

let current = null; // the page's poller; replaced on navigation

class Poller {
  constructor(fn, base = 1000) { this.fn = fn; this.base = base; this.stopped = false; this.timer = null; this.run(); }
  async run() {
    if (this.stopped) return;
    const t0 = performance.now();
    try { await this.fn(); showError(null); }
    catch (e) { if (e instanceof Standby) await standby(); else showError(e); }
    if (this.stopped) return;
    const spent = performance.now() - t0;
    this.timer = setTimeout(() => this.run(), Math.max(this.base, 20 * spent));
  }
  stop() { this.stopped = true; clearTimeout(this.timer); }
}

function showError(e) {
  const b = $("#banner");
  if (!e) { if (b.dataset.kind) { b.hidden = true; b.dataset.kind = ""; } return; }
  b.hidden = false; b.dataset.kind = "error";
  b.innerHTML = `<span class="error">${esc(e.message || e)}</span>`;
}

async function standby() {
  const b = $("#banner");
  b.hidden = false; b.dataset.kind = "standby";
  try {
    const leader = await (await fetch("/master/info")).json();
    const url = `http://${leader.hostname || leader.ip}:${leader.port}/`;
    b.innerHTML = `This master is a <b>standby</b>. The leading master is
      <a id="leader-link" href="${esc(url)}">${esc(leader.hostname || leader.ip)}:${esc(leader.port)}</a>
      (${esc(leader.id || "")}): the cluster's pages are there.`;
  } catch (e) {
    b.innerHTML = "This master is a <b>standby</b> and no leading master is elected at the moment.";
  }
  $("#main").innerHTML = "";
}

// ---------------------------------------------------------------- tables

// A sortable table; `cols`: {key, label, num, html(row), value(row)}.
class Table {
  constructor(cols, opts = {}) {
    this.cols = cols; this.sortKey = opts.sort || cols[0].key; this.desc = !!opts.desc;
    this.onClick = opts.onClick; this.id = opts.id || "";
    this.el = h(`<div class="scroll"><table id="${esc(this.id)}"><thead><tr></tr></thead><tbody></tbody></table></div>`);
    const tr = $("thead tr", this.el);
    for (const c of cols) {
      const th = h(`<th class="sort${c.num ? " num" : ""}" data-key="${esc(c.key)}">${esc(c.label)}</th>`);
      th.onclick = () => { if (this.sortKey === c.key) this.desc = !this.desc; else { this.sortKey = c.key; this.desc = !!c.num; } this.render(this.rows); };
      tr.append(th);
    }
    this.rows = [];
  }
  value(row, key) { const c = this.cols.find(c => c.key === key); return c.value ? c.value(row) : row[key]; }
  render(rows) {
    this.rows = rows;
    const k = this.sortKey, sign = this.desc ? -1 : 1;
    const sorted = [...rows].sort((a, b) => { const x = this.value(a, k), y = this.value(b, k); return (x > y ? 1 : x < y ? -1 : 0) * sign; });
    for (const th of this.el.querySelectorAll("th")) th.classList.toggle("asc", th.dataset.key === k && !this.desc), th.classList.toggle("desc", th.dataset.key === k && this.desc);
    const body = $("tbody", this.el);
    body.innerHTML = sorted.map((r, i) => `<tr data-i="${i}" class="${this.onClick ? "click" : ""}">${this.cols.map(c =>
      `<td class="${c.num ? "num" : ""}">${c.html ? c.html(r) : esc(this.value(r, c.key))}</td>`).join("")}</tr>`).join("")
      || `<tr><td colspan="${this.cols.length}" class="muted">Nothing to show.</td></tr>`;
    if (this.onClick) body.onclick = e => { const tr = e.target.closest("tr[data-i]"); if (tr && !e.target.closest("a")) this.onClick(sorted[+tr.dataset.i]); };
  }
}

function bar(used, offered, total) {
  if (!total) return `<div class="bar"></div>`;
  const u = 100 * used / total, o = 100 * offered / total;
  return `<div class="bar" title="${fmtRes("", used)} used, ${fmtRes("", offered)} offered of ${fmtRes("", total)}"><div class="u" style="width:${u}%"></div><div class="o" style="width:${o}%"></div></div>`;
}
function resCell(name) {
  return { key: name, label: name, num: true, value: a => (a.used_resources || {})[name] || 0,
    html: a => `${fmtRes(name, (a.used_resources || {})[name])} / ${fmtRes(name, (a.resources || {})[name])}` };
}

// ---------------------------------------------------------------- overview

function pooled(summary, snapshot) {
  const out = {};
  for (const r of RES) {
    const total = snapshot[`master/${r}_total`] || 0, used = snapshot[`master/${r}_used`] || 0;
    const offered = summary.slaves.reduce((s, a) => s + ((a.offered_resources || {})[r] || 0), 0);
    out[r] = { total, used, offered, idle: Math.max(0, total - used - offered) };
  }
  return out;
}

function record(pool) {
  const now = Date.now() / 1000;
  let hist = [];
  try { hist = JSON.parse(sessionStorage.getItem(HISTORY_KEY) || "[]"); } catch (e) { hist = []; }
  const last = hist[hist.length - 1];
  if (!last || now - last.t >= 5) hist.push({ t: now, ...Object.fromEntries(RES.map(r => [r, [pool[r].used, pool[r].offered, pool[r].total]])) });
  hist = hist.filter(s => s.t >= now - HOUR);
  sessionStorage.setItem(HISTORY_KEY, JSON.stringify(hist));
  return hist;
}

function chart(hist, name) {
  const W = 600, H = 150, now = Date.now() / 1000;
  const max = Math.max(1e-9, ...hist.map(s => s[name][2]));
  // The last hour, or what the page has sampled so far when that is less.
  const start = Math.max(now - HOUR, hist.length ? hist[0].t : now - HOUR), span = Math.max(1, now - start);
  const x = t => (W * (t - start) / span).toFixed(1), y = v => (H - 16 - (H - 26) * v / max).toFixed(1);
  const since = span >= 120 ? `−${Math.round(span / 60)} min` : `−${Math.round(span)} s`;
  const pts = hist.length ? [...hist, { ...hist[hist.length - 1], t: now }] : [];  // held until now
  const line = (i, color) => pts.length < 2 ? "" :
    `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(s => `${x(s.t)},${y(s[name][i])}`).join(" ")}"/>`;
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="${name} over the last hour">
    <line x1="0" x2="${W}" y1="${y(max)}" y2="${y(max)}" stroke="#dde1e8"/><line x1="0" x2="${W}" y1="${y(0)}" y2="${y(0)}" stroke="#dde1e8"/>
    ${line(2, "#9aa4b5")}${line(1, "#f0a030")}${line(0, "#2f6fdf")}
    <text x="2" y="${H - 3}">${since}</text><text x="${W - 30}" y="${H - 3}">now</text><text x="2" y="10">${esc(fmtRes(name, max))}</text></svg>`;
}

function overview(main) {
  main.innerHTML = `<h1>Cluster overview</h1>
    <div class="cards" id="counts"></div>
    <div class="panel"><h2 style="margin-top:0">Pooled resources</h2>
      <div class="legend"><span><i style="background:var(--used)"></i>used</span><span><i style="background:var(--offered)"></i>offered</span><span><i style="background:var(--idle)"></i>idle</span></div>
      <div class="scroll"><table id="pooled"><thead><tr><th>resource</th><th class="num">total</th><th class="num">used</th><th class="num">offered</th><th class="num">idle</th><th style="width:40%"></th></tr></thead><tbody></tbody></table></div></div>
    <div class="grid2" id="charts"></div>
    <div class="panel"><h2 style="margin-top:0">Tasks by state</h2><div class="cards" id="states"></div></div>`;
  return new Poller(async () => {
    const [summary, snapshot] = await Promise.all([api("/master/state-summary"), api("/metrics/snapshot")]);
    setLeader(summary);
    const pool = pooled(summary, snapshot), hist = record(pool);
    const live = ["staging", "starting", "running", "killing"].reduce((s, k) => s + (snapshot[`master/tasks_${k}`] || 0), 0);
    $("#counts").innerHTML = [
      ["Agents", summary.slaves.length, `${snapshot["master/slaves_unreachable"] || 0} unreachable`],
      ["Frameworks", summary.frameworks.length, `${snapshot["master/frameworks_active"] || 0} active`],
      ["Live tasks", live, `${snapshot["master/tasks_running"] || 0} running`],
      ["Offers", snapshot["master/outstanding_offers"] || 0, "outstanding"],
    ].map(([l, n, sub]) => `<div class="card"><div class="label">${l}</div><div class="big" data-count="${l}">${n}</div><div class="muted">${esc(sub)}</div></div>`).join("");
    $("#pooled tbody").innerHTML = RES.map(r => `<tr data-res="${r}"><td>${r}</td>${["total", "used", "offered", "idle"].map(k =>
      `<td class="num" data-kind="${k}" data-value="${pool[r][k]}">${fmtRes(r, pool[r][k])}</td>`).join("")}<td>${bar(pool[r].used, pool[r].offered, pool[r].total)}</td></tr>`).join("");
    $("#charts").innerHTML = ["cpus", "mem"].map(r => `<div class="panel"><b>${r}</b> <span class="muted">used / offered / total, last hour (sampled by this page)</span>${chart(hist, r)}</div>`).join("");
    const states = ["staging", "starting", "running", "killing", "unreachable", "finished", "failed", "killed", "lost", "error"];
    $("#states").innerHTML = states.map(s => `<a class="card" style="text-decoration:none;color:inherit" href="#/tasks?state=TASK_${s.toUpperCase()}"><div class="label">${s}</div><div class="big">${snapshot[`master/tasks_${s}`] || 0}</div></a>`).join("");
  });
}

function setLeader(summary) {
  $("#leader").textContent = `${summary.hostname} · ${summary.version} · leading since ${when(summary.start_time)}`;
}

// ---------------------------------------------------------------- agents, frameworks, roles

function agents(main) {
  main.innerHTML = `<h1>Agents</h1>`;
  const t = new Table([
    { key: "hostname", label: "host", html: a => `<a href="#/agents/${esc(a.id)}">${esc(a.hostname)}:${esc(a.port)}</a>` },
    { key: "id", label: "id" },
    ...RES.map(resCell),
    { key: "live", label: "tasks", num: true, value: a => a.TASK_STAGING + a.TASK_STARTING + a.TASK_RUNNING + a.TASK_KILLING },
    { key: "attributes", label: "attributes", value: a => Object.entries(a.attributes || {}).map(([k, v]) => `${k}:${v}`).join(" ") },
    { key: "reserved", label: "reservations", value: a => Object.entries(a.reserved_resources || {}).map(([r, m]) => `${r}: ${Object.entries(m).filter(([, v]) => typeof v === "number" && v).map(([k, v]) => `${k} ${fmtRes(k, v)}`).join(", ")}`).join("; ") },
    { key: "state", label: "state", value: a => a.deactivated ? (a.drain_info ? a.drain_info.state.toLowerCase() : "deactivated") : (a.active ? "active" : "inactive") },
    { key: "seconds_since_heartbeat", label: "last heartbeat", num: true, html: a => `${Math.round(a.seconds_since_heartbeat)} s ago` },
  ], { id: "agents" });
  main.append(t.el);
  return new Poller(async () => { const s = await api("/master/state-summary"); setLeader(s); t.render(s.slaves); });
}

function share(fw, totals) {
  return Math.max(0, ...RES.map(r => totals[r] ? ((fw.used_resources || {})[r] || 0) / totals[r] : 0));
}

function frameworks(main) {
  main.innerHTML = `<h1>Frameworks</h1>`;
  let totals = {};
  const t = new Table([
    { key: "name", label: "name", html: f => `<a href="#/tasks?framework=${esc(f.id)}">${esc(f.name)}</a>` },
    { key: "id", label: "id" },
    { key: "roles", label: "roles", value: f => (f.roles || [f.role]).join(", ") },
    { key: "principal", label: "principal" },
    { key: "active", label: "state", value: f => f.active ? (f.connected ? "active" : "disconnected") : "inactive" },
    { key: "share", label: "dominant share", num: true, value: f => share(f, totals), html: f => `${(100 * share(f, totals)).toFixed(1)}%` },
    { key: "running", label: "running", num: true, value: f => f.TASK_RUNNING },
    { key: "staging", label: "staging", num: true, value: f => f.TASK_STAGING + f.TASK_STARTING },
    { key: "done", label: "fin/fail/kill", num: true, value: f => f.TASK_FINISHED + f.TASK_FAILED + f.TASK_KILLED, html: f => `${f.TASK_FINISHED}/${f.TASK_FAILED}/${f.TASK_KILLED}` },
    ...RES.slice(0, 2).map(r => ({ key: r, label: r, num: true, value: f => (f.used_resources || {})[r] || 0, html: f => fmtRes(r, (f.used_resources || {})[r]) })),
    { key: "registered_time", label: "registered", html: f => esc(ago(f.registered_time)) },
  ], { id: "frameworks", sort: "name" });
  main.append(t.el);
  return new Poller(async () => {
    const s = await api("/master/state-summary"); setLeader(s);
    totals = Object.fromEntries(RES.map(r => [r, s.slaves.reduce((x, a) => x + ((a.resources || {})[r] || 0), 0)]));
    t.render(s.frameworks);
  });
}

function roles(main) {
  main.innerHTML = `<h1>Roles</h1>`;
  const map = m => RES.filter(r => m && m[r]).map(r => `${r} ${fmtRes(r, m[r])}`).join(", ") || "—";
  const t = new Table([
    { key: "name", label: "role" }, { key: "weight", label: "weight", num: true },
    { key: "frameworks", label: "frameworks", num: true, value: r => r.frameworks.length },
    { key: "quota", label: "quota guarantee", value: r => map(r.quota.guarantee) },
    { key: "allocated", label: "allocated", value: r => map(r.allocated) },
    { key: "offered", label: "offered", value: r => map(r.offered) },
    { key: "reserved", label: "reserved", value: r => map(r.reserved) },
  ], { id: "roles" });
  main.append(t.el);
  return new Poller(async () => t.render((await api("/roles")).roles));
}

// ---------------------------------------------------------------- tasks (virtualised)

const ROW = 30;
let taskCache = { at: 0, tasks: [] };

function query() { return new URLSearchParams(location.hash.split("?")[1] || ""); }

function tasks(main) {
  const q = query();
  main.innerHTML = `<h1>Tasks <span class="muted" id="task-count"></span></h1>
    <div class="filters">
      <select id="f-state"><option value="">every state</option><option value="live">live (not terminal)</option></select>
      <select id="f-framework"><option value="">every framework</option></select>
      <select id="f-agent"><option value="">every agent</option></select>
      <input id="f-text" placeholder="task id or name contains…" size="24">
    </div>
    <div class="vwrap" id="vwrap"><div id="vspace"></div><table id="tasks"><thead><tr></tr></thead><tbody></tbody></table></div>`;
  const cols = [["id", "id"], ["name", "name"], ["state", "state"], ["framework_id", "framework"], ["slave_id", "agent"],
    ["cpus", "cpus"], ["mem", "mem"], ["updated", "updated"]];
  let sortKey = "updated", desc = true, rows = [], fwNames = {}, agentNames = {};
  const thead = $("#tasks thead tr");
  for (const [k, l] of cols) {
    const th = h(`<th class="sort${["cpus", "mem"].includes(k) ? " num" : ""}" data-key="${k}">${l}</th>`);
    th.onclick = () => { if (sortKey === k) desc = !desc; else { sortKey = k; desc = false; } apply(); };
    thead.append(th);
  }
  const fState = $("#f-state"), fFw = $("#f-framework"), fAgent = $("#f-agent"), fText = $("#f-text");
  for (const s of ["TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_UNREACHABLE", "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR"])
    fState.append(h(`<option value="${s}">${s.slice(5).toLowerCase()}</option>`));
  const wrap = $("#vwrap");
  const value = (t, k) => k === "cpus" || k === "mem" ? (t.resources || {})[k] || 0 : k === "updated" ? t._updated : t[k] ?? "";
  function apply() {
    const st = fState.value, fw = fFw.value, ag = fAgent.value, text = fText.value.trim().toLowerCase();
    rows = taskCache.tasks.filter(t => (!st || (st === "live" ? !TERMINAL.has(t.state) : t.state === st)) &&
      (!fw || t.framework_id === fw) && (!ag || t.slave_id === ag) &&
      (!text || t.id.toLowerCase().includes(text) || (t.name || "").toLowerCase().includes(text)));
    const sign = desc ? -1 : 1;
    rows.sort((a, b) => { const x = value(a, sortKey), y = value(b, sortKey); return (x > y ? 1 : x < y ? -1 : 0) * sign; });
    for (const th of thead.children) th.classList.toggle("asc", th.dataset.key === sortKey && !desc), th.classList.toggle("desc", th.dataset.key === sortKey && desc);
    $("#task-count").textContent = `${rows.length} of ${taskCache.tasks.length}`;
    const params = new URLSearchParams(); if (st) params.set("state", st); if (fw) params.set("framework", fw); if (ag) params.set("agent", ag);
    history.replaceState(null, "", "#/tasks" + (params.toString() ? "?" + params : ""));
    $("#vspace").style.height = (rows.length + 1) * ROW + "px";
    draw();
  }
  function draw() {
    const first = Math.max(0, Math.floor(wrap.scrollTop / ROW) - 5), n = Math.ceil(wrap.clientHeight / ROW) + 10;
    const table = $("#tasks");
    table.style.top = first * ROW + "px";
    $("#tasks tbody").innerHTML = rows.slice(first, first + n).map(t => `<tr class="click" data-fw="${esc(t.framework_id)}" data-id="${esc(t.id)}">
      <td>${esc(t.id)}</td><td>${esc(t.name)}</td><td><span class="state ${esc(t.state)}">${esc(t.state.slice(5))}</span></td>
      <td>${esc(fwNames[t.framework_id] || t.framework_id)}</td><td>${esc(agentNames[t.slave_id] || t.slave_id)}</td>
      <td class="num">${fmtRes("cpus", (t.resources || {}).cpus)}</td><td class="num">${fmtRes("mem", (t.resources || {}).mem)}</td>
      <td>${esc(ago(t._updated))}</td></tr>`).join("");
  }
  wrap.addEventListener("scroll", () => requestAnimationFrame(draw), { passive: true });
  $("#tasks tbody").onclick = e => { const tr = e.target.closest("tr[data-id]"); if (tr) location.hash = `#/task/${encodeURIComponent(tr.dataset.fw)}/${encodeURIComponent(tr.dataset.id)}`; };
  for (const el of [fState, fFw, fAgent]) el.onchange = apply;
  fText.oninput = apply;
  let firstLoad = true;
  return new Poller(async () => {
    const [summary, list] = await Promise.all([api("/master/state-summary"), api("/master/tasks?limit=100000000")]);
    setLeader(summary);
    for (const t of list.tasks) t._updated = t.statuses.length ? t.statuses[t.statuses.length - 1].timestamp : 0;
    taskCache = { at: Date.now(), tasks: list.tasks };
    fwNames = Object.fromEntries(summary.frameworks.map(f => [f.id, f.name]));
    agentNames = Object.fromEntries(summary.slaves.map(a => [a.id, `${a.hostname}:${a.port}`]));
    const keep = (sel, items, want) => {
      const v = sel.value || want || ""; sel.length = 1;
      for (const [id, name] of items) sel.append(h(`<option value="${esc(id)}">${esc(name)}</option>`));
      sel.value = v;
    };
    keep(fFw, summary.frameworks.map(f => [f.id, `${f.name} (${f.id})`]), firstLoad ? q.get("framework") : "");
    keep(fAgent, summary.slaves.map(a => [a.id, a.hostname + ":" + a.port]), firstLoad ? q.get("agent") : "");
    if (firstLoad && q.get("state")) fState.value = q.get("state");
    firstLoad = false;
    apply();
  });
}

// ---------------------------------------------------------------- one agent

function agentPage(main, id) {
  main.innerHTML = `<h1>Agent <span class="muted">${esc(id)}</span></h1><div id="agent-info"></div><h2>Tasks</h2><div id="agent-tasks"></div>`;
  const t = new Table([
    { key: "id", label: "task", html: x => `<a href="#/task/${esc(x.framework_id)}/${esc(x.id)}">${esc(x.id)}</a>` },
    { key: "state", label: "state", html: x => `<span class="state ${esc(x.state)}">${esc(x.state.slice(5))}</span>` },
    { key: "framework_id", label: "framework" }, ...RES.slice(0, 2).map(r => ({ key: r, label: r, num: true, value: x => (x.resources || {})[r] || 0 })),
  ], { id: "agent-task-table" });
  $("#agent-tasks").append(t.el);
  return new Poller(async () => {
    const s = await api("/master/state-summary");
    const a = s.slaves.find(x => x.id === id);
    if (!a) { $("#agent-info").innerHTML = `<p class="muted">No such agent (it may have been removed).</p>`; return; }
    const st = await agentJson(agentBase(a) + "/state");
    $("#agent-info").innerHTML = `<dl class="kv panel"><dt>address</dt><dd><a href="${esc(agentBase(a))}/state">${esc(agentBase(a))}</a></dd>
      ${RES.map(r => `<dt>${r}</dt><dd>${fmtRes(r, (a.used_resources || {})[r])} used, ${fmtRes(r, (a.offered_resources || {})[r])} offered of ${fmtRes(r, (a.resources || {})[r])}</dd>`).join("")}
      <dt>attributes</dt><dd>${esc(JSON.stringify(a.attributes))}</dd><dt>registered</dt><dd>${esc(when(a.registered_time))}</dd>
      <dt>last heartbeat</dt><dd>${Math.round(a.seconds_since_heartbeat)} s ago</dd><dt>version</dt><dd>${esc(a.version)}</dd></dl>`;
    t.render(st.frameworks.flatMap(f => [...f.tasks, ...f.completed_tasks]));
  });
}

// ---------------------------------------------------------------- one task: history and sandbox

async function findTask(fw, id) {
  let t = taskCache.tasks.find(x => x.id === id && x.framework_id === fw);
  if (!t) {
    const list = await api("/master/tasks?limit=100000000");
    t = list.tasks.find(x => x.id === id && x.framework_id === fw);
  }
  return t;
}

function taskPage(main, fw, id) {
  main.innerHTML = `<h1>Task <span class="muted">${esc(id)}</span></h1>
    <div class="grid2"><div class="panel"><dl class="kv" id="task-info"><dt>state</dt><dd class="muted">loading…</dd></dl></div>
    <div class="panel"><h2 style="margin-top:0">Status history</h2><div id="history"></div></div></div>
    <div class="panel"><h2 style="margin-top:0">Sandbox <span class="muted" id="sandbox-path"></span></h2>
      <div class="tabs" id="log-tabs"></div><pre class="log" id="log" tabindex="0"></pre>
      <h2>Files</h2><div id="files"></div></div>`;
  let agent = null, dir = null, browsing = null, viewer = null;
  const files = new Table([
    { key: "path", label: "name", html: f => f.mode.startsWith("d") ? `<a href="#" data-dir="${esc(f.path)}">${esc(f.path.split("/").pop())}/</a>` :
      `<a href="#" data-view="${esc(f.path)}">${esc(f.path.split("/").pop())}</a>` },
    { key: "size", label: "size", num: true }, { key: "mode", label: "mode" }, { key: "mtime", label: "modified", html: f => esc(when(f.mtime)) },
    { key: "dl", label: "", html: f => f.mode.startsWith("d") ? "" : `<a download href="${esc(agentBase(agent))}/files/download?path=${encodeURIComponent(f.path)}">download</a>` },
  ], { id: "file-table" });
  $("#files").append(files.el);
  files.el.addEventListener("click", e => {
    const a = e.target.closest("a[data-dir],a[data-view]");
    if (!a) return;
    e.preventDefault();
    if (a.dataset.dir) { browsing = a.dataset.dir; browse(); } else openLog(a.dataset.view);
  });
  async function browse() {
    const list = await agentJson(`${agentBase(agent)}/files/browse?path=${encodeURIComponent(browsing)}`);
    const up = browsing !== dir ? [{ path: browsing.split("/").slice(0, -1).join("/"), mode: "d..", size: "", mtime: 0, up: true }] : [];
    files.render([...up, ...list]);
    $("#sandbox-path").textContent = browsing;
  }
  function openLog(path) {
    if (viewer) viewer.stop();
    for (const b of document.querySelectorAll("#log-tabs button")) b.classList.toggle("on", b.dataset.path === path);
    viewer = new LogViewer(agentBase(agent), path, $("#log"));
  }
  const poller = new Poller(async () => {
    const t = await findTask(fw, id);
    if (!t) { $("#task-info").innerHTML = `<dt>state</dt><dd>unknown task</dd>`; return; }
    const s = await api("/master/state-summary");
    agent = s.slaves.find(a => a.id === t.slave_id);
    const fwName = (s.frameworks.find(f => f.id === fw) || {}).name || fw;
    let statuses = t.statuses;
    if (agent) {
      const st = await agentJson(agentBase(agent) + "/state");
      for (const f of [...st.frameworks, ...st.completed_frameworks]) {
        for (const ex of [...f.executors, ...f.completed_executors]) {
          const task = [...ex.tasks, ...ex.completed_tasks].find(x => x.id === id);
          if (task && f.id === fw) { statuses = task.statuses.length >= statuses.length ? task.statuses : statuses; t.state = task.state; dir = dir || ex.directory; }
        }
      }
    }
    $("#task-info").innerHTML = `<dt>state</dt><dd><span class="state ${esc(t.state)}" id="task-state">${esc(t.state)}</span></dd>
      <dt>name</dt><dd>${esc(t.name)}</dd><dt>framework</dt><dd><a href="#/tasks?framework=${esc(fw)}">${esc(fwName)}</a></dd>
      <dt>agent</dt><dd>${agent ? `<a href="#/agents/${esc(agent.id)}">${esc(agent.hostname)}:${esc(agent.port)}</a>` : esc(t.slave_id)}</dd>
      <dt>resources</dt><dd>${RES.filter(r => (t.resources || {})[r]).map(r => `${r} ${fmtRes(r, t.resources[r])}`).join(", ")}</dd>
      <dt>role</dt><dd>${esc(t.role || "*")}</dd>`;
    $("#history").innerHTML = `<table><thead><tr><th>state</th><th>time</th><th>healthy</th></tr></thead><tbody>${[...statuses].reverse().map(s =>
      `<tr><td><span class="state ${esc(s.state)}">${esc(s.state)}</span></td><td>${esc(when(s.timestamp))}</td><td>${s.healthy === undefined ? "" : s.healthy}</td></tr>`).join("")}</tbody></table>`;
    if (dir && !browsing) {
      browsing = dir;
      $("#log-tabs").innerHTML = ["stdout", "stderr"].map(n => `<button class="plain" data-path="${esc(dir + "/" + n)}">${n}</button>`).join("");
      $("#log-tabs").onclick = e => { const b = e.target.closest("button[data-path]"); if (b) openLog(b.dataset.path); };
      openLog(dir + "/stdout");
      await browse();
    } else if (!dir) {
      $("#sandbox-path").textContent = agent ? "(not on the agent any more)" : "(the agent is gone)";
    }
  }, 2000);
  return { stop() { poller.stop(); if (viewer) viewer.stop(); } };
}

// Offset polling over /files/read, as Mesos's UI does: start near the end, then read what
// was added, a page at a time, once a second.
const PAGE = 64 * 1024, TAIL = 64 * 1024;
class LogViewer {
  constructor(base, path, pre) {
    this.url = `${base}/files/read?path=${encodeURIComponent(path)}`; this.pre = pre; this.offset = null; this.stopped = false;
    pre.textContent = ""; pre.dataset.path = path; this.tick();
  }
  async tick() {
    if (this.stopped) return;
    try {
      if (this.offset === null) {
        const end = await agentJson(`${this.url}&offset=-1`);
        this.offset = Math.max(0, end.offset - TAIL);
      }
      for (let i = 0; i < 16 && !this.stopped; i++) {
        const r = await agentJson(`${this.url}&offset=${this.offset}&length=${PAGE}`);
        if (!r.data) { if (r.offset < this.offset) { this.offset = r.offset; } break; }
        const atBottom = this.pre.scrollTop + this.pre.clientHeight >= this.pre.scrollHeight - 8;
        this.pre.append(document.createTextNode(r.data));
        this.offset = r.offset + new TextEncoder().encode(r.data).length;
        if (atBottom) this.pre.scrollTop = this.pre.scrollHeight;
      }
    } catch (e) { this.pre.append(document.createTextNode(`\n[log unavailable: ${e.message}]\n`)); this.stopped = true; }
    if (!this.stopped) this.timer = setTimeout(() => this.tick(), 1000);
  }
  stop() { this.stopped = true; clearTimeout(this.timer); }
}

// ---------------------------------------------------------------- routing

function route() {
  if (current) current.stop();
  const main = $("#main");
  const path = location.hash.replace(/^#/, "").split("?")[0] || "/";
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const page = parts[0] || "overview";
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.page === page || (page === "task" && a.dataset.page === "tasks"));
  if (page === "agents" && parts[1]) current = agentPage(main, parts[1]);
  else if (page === "task") current = taskPage(main, parts[1], parts[2]);
  else current = ({ overview, agents, frameworks, roles, tasks }[page] || overview)(main);
}
window.addEventListener("hashchange", route);
route();
