// Marathon's web UI over the v2 REST API. Live: every event on /v2/events (SSE) schedules a
// refresh of what the page shows; a slow poll covers deployment progress between events. A
// poll waits at least 20x its own duration, so big answers are asked for less often.

const $ = (sel, root = document) => root.querySelector(sel);
const esc = v => String(v ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const EVENTS = ["status_update_event", "deployment_success", "deployment_failed", "deployment_info",
  "deployment_step_success", "deployment_step_failure", "group_change_success", "api_post_event",
  "app_terminated_event", "health_status_changed_event", "unhealthy_instance_kill_event", "event_stream_attached"];
const ROW = 30;

class ApiError extends Error { constructor(status, body) { super(body && body.message || `HTTP ${status}`); this.status = status; this.body = body; } }

async function api(method, path, body) {
  const r = await fetch(path, { method, headers: { Accept: "application/json", "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch (e) { doc = { message: text }; }
  if (!r.ok) throw new ApiError(r.status, doc);
  return doc;
}
const get = path => api("GET", path);
const enc = id => id.replace(/^\//, "").split("/").map(encodeURIComponent).join("/");
function fmtMem(v) { v = Number(v || 0); return v >= 1024 ? (v / 1024).toFixed(1) + " GB" : Math.round(v) + " MB"; }
function ago(iso) { if (!iso) return ""; const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000); return s < 60 ? `${Math.round(s)} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${(s / 3600).toFixed(1)} h ago`; }

// ---------------------------------------------------------------- live updates

let page = null; // {refresh(), stop()}
let refreshTimer = null, lastRefresh = 0, refreshCost = 0;

function scheduleRefresh(delay = 150) {
  if (refreshTimer) return;
  const wait = Math.max(delay, 20 * refreshCost - (performance.now() - lastRefresh));
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    if (!page) return;
    const t0 = performance.now();
    try { await page.refresh(); showError(null); } catch (e) { showError(e); }
    refreshCost = performance.now() - t0; lastRefresh = performance.now();
  }, wait);
}

function connectEvents() {
  const es = new EventSource("/v2/events");
  const live = $("#live");
  es.onopen = () => { live.textContent = "● live"; live.style.color = "#7fd39b"; };
  es.onerror = () => { live.textContent = "reconnecting…"; live.style.color = ""; };
  for (const t of EVENTS) es.addEventListener(t, () => scheduleRefresh());
}

// Progress of deployments has no event of its own between steps: poll while any is running.
async function background() {
  try {
    const [deps, queue] = await Promise.all([get("/v2/deployments"), get("/v2/queue")]);
    $("#dep-count").textContent = deps.length ? `(${deps.length})` : "";
    $("#queue-count").textContent = queue.queue.length ? `(${queue.queue.length})` : "";
    if (deps.length) scheduleRefresh(0);
    setTimeout(background, deps.length ? 1000 : 5000);
  } catch (e) { setTimeout(background, 5000); }
}

function showError(e) {
  const b = $("#banner");
  if (!e) { b.hidden = true; return; }
  b.hidden = false; b.innerHTML = `<span class="error">${esc(e.message)}</span>`;
}

// ---------------------------------------------------------------- dialogs

function dialog(html) {
  const d = $("#dialog");
  d.innerHTML = html;
  if (!d.open) d.showModal();
  return d;
}
function confirmAction(title, text, label, danger = true) {
  return new Promise(resolve => {
    const d = dialog(`<h2 style="margin-top:0">${esc(title)}</h2><p>${text}</p>
      <div class="actions" style="justify-content:flex-end"><button class="plain" data-x="no">Cancel</button>
      <button class="${danger ? "danger" : ""}" data-x="yes" id="confirm">${esc(label)}</button></div>`);
    d.onclick = e => { const b = e.target.closest("button[data-x]"); if (b) { d.close(); resolve(b.dataset.x === "yes"); } };
    d.oncancel = () => resolve(false);
  });
}
async function act(fn) {
  try { await fn(); showError(null); } catch (e) { showError(e); }
  scheduleRefresh(0);
}

// ---------------------------------------------------------------- status

function appStatus(app, queue) {
  const q = queue.find(x => x.app.id === app.id);
  if (app.deployments && app.deployments.length) return "deploying";
  if (q && q.delay && !q.delay.overdue) return "delayed";
  if (q) return "waiting";
  if (app.instances === 0 && app.tasksRunning === 0) return "suspended";
  return "running";
}
function healthBar(app) {
  const n = Math.max(app.instances, app.tasksRunning + app.tasksStaged, 1);
  const hl = app.tasksHealthy, un = app.tasksUnhealthy, run = Math.max(0, app.tasksRunning - hl - un), st = app.tasksStaged;
  const w = x => `${(100 * x / n).toFixed(1)}%`;
  return `<div class="bar" title="${hl} healthy, ${un} unhealthy, ${run} running, ${st} staged of ${app.instances}">
    <div class="h" style="width:${w(hl)}"></div><div class="u" style="width:${w(run)}"></div><div class="x" style="width:${w(un)}"></div><div class="s" style="width:${w(st)}"></div></div>`;
}

// ---------------------------------------------------------------- apps tree

function appsPage(main) {
  main.innerHTML = `<h1>Applications</h1>
    <div class="filters"><button id="create">Create application</button><input id="filter" placeholder="filter by id…" size="24"></div>
    <div class="scroll"><table class="tree" id="apps"><thead><tr><th>id</th><th>status</th><th class="num">instances</th><th>health</th><th class="num">cpus</th><th class="num">mem</th><th>version</th></tr></thead><tbody></tbody></table></div>`;
  $("#create").onclick = () => createDialog();
  let apps = [], queue = [];
  const filter = $("#filter");
  filter.oninput = draw;
  function draw() {
    const f = filter.value.trim().toLowerCase();
    const shown = apps.filter(a => !f || a.id.toLowerCase().includes(f)).sort((a, b) => a.id.localeCompare(b.id));
    const rows = [], groups = new Set();
    for (const app of shown) {
      const parts = app.id.split("/").filter(Boolean);
      for (let i = 1; i < parts.length; i++) {
        const g = "/" + parts.slice(0, i).join("/");
        if (groups.has(g)) continue;
        groups.add(g);
        const members = shown.filter(a => a.id.startsWith(g + "/"));
        const sum = k => members.reduce((s, a) => s + a[k], 0);
        rows.push(`<tr data-group="${esc(g)}"><td class="group"><span class="indent" style="width:${(i - 1) * 1.2}rem"></span><span class="muted">▾</span> ${esc(parts[i - 1])}</td><td></td>
          <td class="num">${sum("tasksRunning")} / ${sum("instances")}</td><td></td><td class="num">${(members.reduce((s, a) => s + a.cpus * a.instances, 0)).toFixed(2)}</td><td class="num">${fmtMem(members.reduce((s, a) => s + a.mem * a.instances, 0))}</td><td></td></tr>`);
      }
      const st = appStatus(app, queue);
      rows.push(`<tr class="click" data-app="${esc(app.id)}"><td><span class="indent" style="width:${(parts.length - 1) * 1.2}rem"></span><a href="#/apps/${esc(enc(app.id))}">${esc(parts[parts.length - 1])}</a></td>
        <td><span class="status ${st}" data-status="${st}">${st}</span></td><td class="num" data-instances>${app.tasksRunning} / ${app.instances}</td><td>${healthBar(app)}</td>
        <td class="num">${app.cpus}</td><td class="num">${fmtMem(app.mem)}</td><td class="muted">${esc(ago(app.version))}</td></tr>`);
    }
    $("#apps tbody").innerHTML = rows.join("") || `<tr><td colspan="7" class="muted">No applications yet. Create one.</td></tr>`;
  }
  $("#apps tbody").onclick = e => { const tr = e.target.closest("tr[data-app]"); if (tr && !e.target.closest("a")) location.hash = `#/apps/${enc(tr.dataset.app)}`; };
  return { async refresh() { const [a, q] = await Promise.all([get("/v2/apps?embed=apps.deployments"), get("/v2/queue")]); apps = a.apps; queue = q.queue; draw(); } };
}

// ---------------------------------------------------------------- create / edit

const FIELDS = [["id", "ID", "text", "/my-group/my-app"], ["cmd", "Command", "text", "python3 -m http.server $PORT0"],
  ["cpus", "CPUs", "number", "0.1"], ["mem", "Memory (MB)", "number", "64"], ["disk", "Disk (MB)", "number", "0"],
  ["instances", "Instances", "number", "1"], ["image", "Docker image (optional)", "text", ""], ["ports", "Ports (comma separated, 0 = any)", "text", "0"]];

function formToApp(form) {
  const v = n => form.elements[n].value.trim();
  const app = { id: v("id") };
  if (v("cmd")) app.cmd = v("cmd");
  for (const k of ["cpus", "mem", "disk", "instances"]) if (v(k) !== "") app[k] = Number(v(k));
  if (v("image")) app.container = { type: "DOCKER", docker: { image: v("image") } };
  if (v("ports")) app.portDefinitions = v("ports").split(",").map(p => ({ port: Number(p.trim()) }));
  return app;
}

function showErrors(form, err) {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  const details = (err.body && err.body.details) || [];
  const general = [];
  const fieldOf = path => {
    const p = path.replace(/^\//, "").split("/")[0].replace(/\(\d+\)|\[\d+\]/, "");
    return { container: "image", portDefinitions: "ports" }[p] || p;
  };
  for (const d of Array.isArray(details) ? details : []) {
    const msg = (d.errors || []).join("; ");
    const el = form.querySelector(`.field-error[data-for="${fieldOf(d.path || "")}"]`);
    if (el) el.textContent = msg; else general.push(`${d.path}: ${msg}`);
  }
  if (!details.length || general.length) general.unshift(err.message);
  form.querySelector(".field-error[data-for='_']").textContent = general.join(" — ");
}

function createDialog() {
  const d = dialog(`<h2 style="margin-top:0">New application</h2>
    <div class="tabs" style="margin-bottom:.6rem"><button class="on" data-tab="form">Form</button><button data-tab="json">JSON editor</button></div>
    <form class="app" id="app-form" novalidate>
      <div data-pane="form">
        ${FIELDS.slice(0, 2).map(fieldHtml).join("")}
        <div class="row">${FIELDS.slice(2, 6).map(fieldHtml).join("")}</div>
        ${FIELDS.slice(6).map(fieldHtml).join("")}
      </div>
      <div data-pane="json" hidden><label>App definition (JSON)</label><textarea class="json" name="json" spellcheck="false"></textarea></div>
      <div class="field-error" data-for="_"></div>
      <div class="actions" style="justify-content:flex-end"><button type="button" class="plain" id="cancel">Cancel</button><button type="submit" id="submit">Create application</button></div>
    </form>`);
  const form = $("#app-form", d);
  let tab = "form";
  d.querySelector(".tabs").onclick = e => {
    const b = e.target.closest("button[data-tab]"); if (!b) return;
    e.preventDefault();
    if (b.dataset.tab === "json" && tab === "form") form.elements.json.value = JSON.stringify(formToApp(form), null, 2);
    tab = b.dataset.tab;
    for (const x of d.querySelectorAll(".tabs button")) x.classList.toggle("on", x === b);
    for (const p of d.querySelectorAll("[data-pane]")) p.hidden = p.dataset.pane !== tab;
  };
  $("#cancel", d).onclick = () => d.close();
  form.onsubmit = async e => {
    e.preventDefault();
    let app;
    if (tab === "json") {
      try { app = JSON.parse(form.elements.json.value); } catch (err) { showErrors(form, { message: `Invalid JSON: ${err.message}` }); return; }
    } else app = formToApp(form);
    try {
      await api("POST", "/v2/apps", app);
      d.close();
      location.hash = `#/apps/${enc(app.id || "")}`;
    } catch (err) { showErrors(form, err); }
  };
}
function fieldHtml([name, label, type, placeholder]) {
  return `<div><label for="f-${name}">${esc(label)}</label><input id="f-${name}" name="${name}" type="${type}" step="any" placeholder="${esc(placeholder)}"
    value="${name === "cpus" ? "0.1" : name === "mem" ? "64" : name === "instances" ? "1" : ""}"><div class="field-error" data-for="${name}"></div></div>`;
}

// ---------------------------------------------------------------- one app

function appPage(main, id) {
  main.innerHTML = `<h1><a href="#/">Applications</a> / <span id="app-id">${esc(id)}</span> <span id="app-status"></span></h1>
    <div class="actions">
      <button id="scale">Scale</button><button id="restart" class="plain">Restart</button>
      <button id="suspend" class="plain">Suspend</button><button id="destroy" class="danger">Destroy</button>
    </div>
    <div class="cards" id="app-cards"></div>
    <div class="tabs" style="margin:1rem 0 .5rem" id="app-tabs">
      <button class="on" data-tab="instances">Instances</button><button data-tab="config">Configuration</button>
      <button data-tab="versions">Versions</button><button data-tab="deployments">Deployments</button></div>
    <div data-pane="instances">
      <div class="filters"><button class="plain" id="kill" disabled>Kill</button><button class="plain" id="kill-scale" disabled>Kill &amp; scale</button>
        <span class="muted" id="selected"></span><span id="failure" class="error"></span></div>
      <div class="vwrap" id="vwrap" style="height:50vh"><div id="vspace"></div><table id="tasks"><thead><tr>
        <th><input type="checkbox" id="all"></th><th>task</th><th>state</th><th>health</th><th>host</th><th>ports</th><th>started</th><th>version</th></tr></thead><tbody></tbody></table></div>
    </div>
    <div data-pane="config" hidden><pre class="diff" id="config"></pre></div>
    <div data-pane="versions" hidden><div class="grid2"><div class="panel"><table id="versions"><tbody></tbody></table></div>
      <div class="panel"><div class="actions"><b id="ver-title">Pick a version to compare with the current one</b><button id="apply" hidden>Apply this version</button></div><pre class="diff" id="diff"></pre></div></div></div>
    <div data-pane="deployments" hidden><div id="app-deps"></div></div>`;
  let app = null, tasks = [], selected = new Set(), pickedVersion = null;
  const path = `/v2/apps/${enc(id)}`;
  $("#app-tabs").onclick = e => {
    const b = e.target.closest("button[data-tab]"); if (!b) return;
    for (const x of $("#app-tabs").children) x.classList.toggle("on", x === b);
    for (const p of main.querySelectorAll("[data-pane]")) p.hidden = p.dataset.pane !== b.dataset.tab;
    if (b.dataset.tab === "versions") loadVersions();
  };
  $("#scale").onclick = () => {
    const d = dialog(`<h2 style="margin-top:0">Scale ${esc(id)}</h2><form class="app" id="scale-form"><label for="scale-n">Instances</label>
      <input id="scale-n" type="number" min="0" value="${app ? app.instances : 1}"><div class="field-error" data-for="_"></div>
      <div class="actions" style="justify-content:flex-end"><button type="button" class="plain" id="scale-cancel">Cancel</button><button type="submit" id="scale-ok">Scale application</button></div></form>`);
    $("#scale-cancel", d).onclick = () => d.close();
    $("#scale-form", d).onsubmit = async e => {
      e.preventDefault();
      try { await api("PUT", path, { instances: Number($("#scale-n", d).value) }); d.close(); scheduleRefresh(0); }
      catch (err) { $(".field-error", d).textContent = err.message; }
    };
  };
  $("#restart").onclick = async () => { if (await confirmAction("Restart", `Restart every instance of <b>${esc(id)}</b> (rolling, per its upgrade strategy)?`, "Restart", false)) act(() => api("POST", `${path}/restart`)); };
  $("#suspend").onclick = async () => { if (await confirmAction("Suspend", `Scale <b>${esc(id)}</b> to 0 instances?`, "Suspend")) act(() => api("PUT", path, { instances: 0 })); };
  $("#destroy").onclick = async () => {
    if (await confirmAction("Destroy", `Destroy <b>${esc(id)}</b> and kill all its tasks? This cannot be undone.`, "Destroy")) {
      await act(() => api("DELETE", path)); location.hash = "#/";
    }
  };
  const killSelected = async scale => {
    const ids = [...selected];
    if (await confirmAction(scale ? "Kill and scale" : "Kill", `${scale ? "Kill and scale down by" : "Kill (Marathon replaces them)"} ${ids.length} task(s)?`, scale ? "Kill & scale" : "Kill")) {
      await act(() => api("POST", `/v2/tasks/delete${scale ? "?scale=true" : ""}`, { ids }));
      selected.clear(); drawTasks();
    }
  };
  $("#kill").onclick = () => killSelected(false);
  $("#kill-scale").onclick = () => killSelected(true);
  const wrap = $("#vwrap");
  wrap.addEventListener("scroll", () => requestAnimationFrame(drawTasks), { passive: true });
  $("#all").onchange = e => { selected = e.target.checked ? new Set(tasks.map(t => t.id)) : new Set(); drawTasks(); };
  $("#tasks tbody").onchange = e => { const c = e.target.closest("input[data-task]"); if (c) { c.checked ? selected.add(c.dataset.task) : selected.delete(c.dataset.task); drawTasks(); } };
  function drawTasks() {
    $("#vspace").style.height = (tasks.length + 1) * ROW + "px";
    const first = Math.max(0, Math.floor(wrap.scrollTop / ROW) - 5), n = Math.ceil(wrap.clientHeight / ROW) + 10;
    $("#tasks").style.top = first * ROW + "px";
    const health = t => !t.healthCheckResults || !t.healthCheckResults.length ? "" : t.healthCheckResults.every(h => h.alive) ? "healthy" : "unhealthy";
    $("#tasks tbody").innerHTML = tasks.slice(first, first + n).map(t => `<tr data-id="${esc(t.id)}"><td><input type="checkbox" data-task="${esc(t.id)}" ${selected.has(t.id) ? "checked" : ""}></td>
      <td>${esc(t.id)}</td><td><span class="state ${esc(t.state)}">${esc((t.state || "").replace("TASK_", ""))}</span></td><td>${health(t)}</td>
      <td>${esc(t.host)}</td><td>${esc((t.ports || []).join(", "))}</td><td>${esc(ago(t.startedAt))}</td><td class="muted">${esc(t.version)}</td></tr>`).join("")
      || `<tr><td colspan="8" class="muted">No instances.</td></tr>`;
    for (const b of ["#kill", "#kill-scale"]) $(b).disabled = !selected.size;
    $("#selected").textContent = selected.size ? `${selected.size} selected` : `${tasks.length} instances`;
  }
  async function loadVersions() {
    const vs = (await get(`${path}/versions`)).versions;
    $("#versions tbody").innerHTML = vs.map(v => `<tr class="click" data-v="${esc(v)}"><td>${esc(v)}</td><td class="muted">${v === app.version ? "current" : esc(ago(v))}</td></tr>`).join("");
    $("#versions tbody").onclick = async e => {
      const tr = e.target.closest("tr[data-v]"); if (!tr) return;
      pickedVersion = tr.dataset.v;
      const old = await get(`${path}/versions/${encodeURIComponent(pickedVersion)}`);
      $("#ver-title").textContent = `${pickedVersion} → current`;
      $("#diff").innerHTML = diff(config(old), config(app));
      $("#apply").hidden = pickedVersion === app.version;
    };
  }
  $("#apply").onclick = async () => {
    if (pickedVersion && await confirmAction("Apply version", `Deploy version <b>${esc(pickedVersion)}</b> of ${esc(id)}?`, "Apply", false))
      act(() => api("PUT", path, { version: pickedVersion }));
  };
  return {
    async refresh() {
      let doc;
      try { doc = await get(`${path}?embed=app.deployments`); }
      catch (e) { if (e.status === 404) { main.innerHTML = `<h1>${esc(id)}</h1><p class="muted">This application does not exist (any more). <a href="#/">All applications</a></p>`; page = null; return; } throw e; }
      app = doc.app;
      const queue = (await get("/v2/queue")).queue;
      const st = appStatus(app, queue);
      $("#app-status").innerHTML = `<span class="status ${st}" data-status="${st}">${st}</span>`;
      $("#app-cards").innerHTML = [["Instances", `${app.tasksRunning} / ${app.instances}`, "running / wanted"], ["Healthy", app.tasksHealthy, `${app.tasksUnhealthy} unhealthy`],
        ["Staged", app.tasksStaged, ""], ["CPUs", app.cpus, "per instance"], ["Memory", fmtMem(app.mem), "per instance"]]
        .map(([l, v, s]) => `<div class="card"><div class="label">${l}</div><div class="big" data-card="${l}">${esc(v)}</div><div class="muted">${esc(s)}</div></div>`).join("");
      tasks = (app.tasks || []).sort((a, b) => a.id.localeCompare(b.id));
      for (const t of [...selected]) if (!tasks.some(x => x.id === t)) selected.delete(t);
      $("#failure").textContent = app.lastTaskFailure ? `last failure: ${app.lastTaskFailure.state} ${app.lastTaskFailure.message || ""} (${ago(app.lastTaskFailure.timestamp)})` : "";
      drawTasks();
      $("#config").textContent = JSON.stringify(config(app), null, 2);
      const deps = (await get("/v2/deployments")).filter(d => d.affectedApps.includes(app.id));
      $("#app-deps").innerHTML = deps.length ? deploymentsTable(deps) : `<p class="muted">No deployment in progress.</p>`;
    },
  };
}

const RUNTIME = ["tasks", "tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "deployments", "lastTaskFailure", "version", "versionInfo", "readinessCheckResults"];
function config(app) { return Object.fromEntries(Object.entries(app).filter(([k]) => !RUNTIME.includes(k))); }

// A line diff of two JSON documents (longest common subsequence; app definitions are small).
function diff(a, b) {
  const x = JSON.stringify(a, null, 2).split("\n"), y = JSON.stringify(b, null, 2).split("\n");
  const n = x.length, m = y.length, L = Array.from({ length: n + 1 }, () => new Int32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) { out.push(`<span>  ${esc(x[i])}</span>`); i++; j++; }
    else if (j < m && (i >= n || L[i][j + 1] >= L[i + 1][j])) { out.push(`<span class="add">+ ${esc(y[j])}</span>`); j++; }
    else { out.push(`<span class="del">- ${esc(x[i])}</span>`); i++; }
  }
  return out.join("");
}

// ---------------------------------------------------------------- deployments and queue

function deploymentsTable(deps) {
  return `<div class="scroll"><table id="deployments"><thead><tr><th>deployment</th><th>apps</th><th>progress</th><th>current step</th><th>started</th><th></th></tr></thead><tbody>${deps.map(d => {
    const pct = 100 * Math.max(0, d.currentStep - 1) / Math.max(1, d.totalSteps);
    return `<tr data-deployment="${esc(d.id)}"><td>${esc(d.id)}</td><td>${d.affectedApps.map(a => `<a href="#/apps/${esc(enc(a))}">${esc(a)}</a>`).join(", ")}</td>
      <td><div class="progress" title="step ${d.currentStep} of ${d.totalSteps}"><div style="width:${pct}%"></div></div> <span class="muted">step ${d.currentStep} of ${d.totalSteps}</span></td>
      <td>${(d.currentActions || []).map(a => `${esc(a.action)} ${esc(a.app)}`).join(", ")}</td><td>${esc(ago(d.version))}</td>
      <td><button class="plain" data-cancel="${esc(d.id)}">Rollback</button> <button class="danger" data-force="${esc(d.id)}">Stop</button></td></tr>
      <tr><td colspan="6" class="muted" style="white-space:normal">${d.steps.map((s, i) => `<b>${i + 1}.</b> ${s.actions.map(a => `${esc(a.action)} ${esc(a.app)}`).join(", ")}${i + 1 < d.currentStep ? " ✓" : ""}`).join(" &nbsp; ")}</td></tr>`;
  }).join("")}</tbody></table></div>`;
}

document.addEventListener("click", async e => {
  const b = e.target.closest("button[data-cancel],button[data-force]");
  if (!b) return;
  const id = b.dataset.cancel || b.dataset.force, force = !!b.dataset.force;
  const text = force ? `Stop deployment <b>${esc(id)}</b> where it is (force-cancel, no rollback)?` : `Cancel deployment <b>${esc(id)}</b> and roll back to the previous state?`;
  if (await confirmAction(force ? "Force-cancel deployment" : "Roll back deployment", text, force ? "Stop" : "Roll back"))
    act(() => api("DELETE", `/v2/deployments/${encodeURIComponent(id)}${force ? "?force=true" : ""}`));
});

function deploymentsPage(main) {
  main.innerHTML = `<h1>Deployments</h1><div id="deps"></div>`;
  return { async refresh() { const deps = await get("/v2/deployments"); $("#deps").innerHTML = deps.length ? deploymentsTable(deps) : `<p class="muted">No deployment in progress.</p>`; } };
}

function queuePage(main) {
  main.innerHTML = `<h1>Launch queue</h1><div class="scroll"><table id="queue"><thead><tr><th>app</th><th class="num">waiting instances</th><th>why</th><th>since</th><th></th></tr></thead><tbody></tbody></table></div>`;
  $("#queue").onclick = e => { const b = e.target.closest("button[data-reset]"); if (b) act(() => api("DELETE", `/v2/queue/${enc(b.dataset.reset)}/delay`)); };
  return {
    async refresh() {
      const q = (await get("/v2/queue")).queue;
      $("#queue tbody").innerHTML = q.map(i => {
        const s = i.processedOffersSummary || {};
        const why = !i.delay.overdue ? `backing off after failures: ${i.delay.timeLeftSeconds} s left` :
          `waiting for a matching offer (${s.processedOffersCount || 0} offers seen, ${s.unusedOffersCount || 0} declined)`;
        return `<tr><td><a href="#/apps/${esc(enc(i.app.id))}">${esc(i.app.id)}</a></td><td class="num">${i.count}</td><td>${esc(why)}</td><td>${esc(ago(i.since))}</td>
          <td>${i.delay.overdue ? "" : `<button class="plain" data-reset="${esc(i.app.id)}">Reset delay</button>`}</td></tr>`;
      }).join("") || `<tr><td colspan="5" class="muted">Nothing is waiting.</td></tr>`;
    },
  };
}

// ---------------------------------------------------------------- routing

function route() {
  const main = $("#main");
  const path = location.hash.replace(/^#/, "") || "/";
  const parts = path.split("/").filter(Boolean);
  const name = parts[0] === "apps" && parts.length > 1 ? "app" : parts[0] || "apps";
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.page === (name === "app" ? "apps" : name));
  page = name === "app" ? appPage(main, "/" + parts.slice(1).map(decodeURIComponent).join("/"))
    : ({ deployments: deploymentsPage, queue: queuePage }[name] || appsPage)(main);
  refreshCost = 0;
  scheduleRefresh(0);
}
window.addEventListener("hashchange", route);
route();
connectEvents();
background();
