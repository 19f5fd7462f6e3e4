// Weft's dashboard: one page, hash routes (#/workloads/NS, ...), each page polling the
// JSON of /api/* every POLL_MS and redrawing in place; tap is a Server-Sent Events stream.
"use strict";
const POLL_MS = 2000;
const main = document.getElementById("main");
const select = document.getElementById("namespace");
const status = document.getElementById("status");
let timer = null;
let tapSource = null;
let tapRetry = null;

const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const pct = (v) => (v === null || v === undefined ? "-" : (v * 100).toFixed(2) + "%");
const num = (v, d = 2) => (v === null || v === undefined ? "-" : Number(v).toFixed(d));
const ms = (v) => (v === null || v === undefined ? "-" : Number(v).toFixed(0) + " ms");
// Each figure carries its raw value for tests and tools: data-value.
const cell = (text, value, cls = "") => `<td class="${cls}" data-value="${esc(value ?? "")}">${esc(text)}</td>`;
const successClass = (v) => (v === null || v === undefined ? "" : v < 0.95 ? "bad" : "good");

async function getJSON(path) {
  const answer = await fetch(path);
  const body = await answer.json();
  if (!answer.ok) throw new Error(body.error || answer.statusText);
  return body;
}

function route() {
  const [, page = "namespaces", namespace = ""] = location.hash.split("/");
  return {page: page || "namespaces", namespace: decodeURIComponent(namespace)};
}

function goldenCells(row) {
  return cell(pct(row.success), row.success, "success " + successClass(row.success)) +
    cell(num(row.rps), row.rps, "rps") +
    cell(ms(row.latency_ms_p50), row.latency_ms_p50, "p50") +
    cell(ms(row.latency_ms_p95), row.latency_ms_p95, "p95") +
    cell(ms(row.latency_ms_p99), row.latency_ms_p99, "p99");
}
const GOLDEN_HEADERS = "<th>Success</th><th>RPS</th><th>P50</th><th>P95</th><th>P99</th>";

const pages = {
  async namespaces() {
    const data = await getJSON("/api/namespaces");
    const rows = data.rows.map((r) => `<tr data-name="${esc(r.name)}"><td><a href="#/workloads/${encodeURIComponent(r.name)}">${esc(r.name)}</a></td>` +
      cell(`${r.meshed_pods}/${r.pods}`, r.meshed_pods, "meshed") + goldenCells(r) + cell(pct(r.mtls_share), r.mtls_share, "mtls") + "</tr>").join("");
    return `<h2>Namespaces <span class="note">(last ${data.window_seconds}s)</span></h2>
      <table data-testid="namespaces"><tr><th>Namespace</th><th>Meshed</th>${GOLDEN_HEADERS}<th>mTLS</th></tr>${rows}</table>`;
  },
  async workloads(ns) {
    const data = await getJSON(`/api/workloads?namespace=${encodeURIComponent(ns)}`);
    const rows = data.rows.map((r) => `<tr data-name="${esc(r.name)}" data-kind="${esc(r.kind)}"><td>${esc(r.kind === "deployment" ? "deploy" : r.kind)}/${esc(r.name)}</td>` +
      cell(`${r.meshed_pods}/${r.pods}`, r.meshed_pods, "meshed") + goldenCells(r) + cell(pct(r.mtls_share), r.mtls_share, "mtls") + "</tr>").join("");
    return `<h2>Workloads in ${esc(ns)} <span class="note">(last ${data.window_seconds}s, as their own proxies served it)</span></h2>
      <table data-testid="workloads"><tr><th>Workload</th><th>Meshed</th>${GOLDEN_HEADERS}<th>mTLS</th></tr>${rows}</table>`;
  },
  async graph(ns) {
    const data = await getJSON(`/api/graph?namespace=${encodeURIComponent(ns)}`);
    const W = 190, H = 30, GAP_X = 90, GAP_Y = 18;
    const at = {};
    for (const n of data.nodes) at[n.id] = {x: 10 + n.rank * (W + GAP_X), y: 10 + n.order * (H + GAP_Y)};
    const width = 20 + Math.max(1, ...data.nodes.map((n) => n.rank + 1)) * (W + GAP_X);
    const height = 20 + Math.max(1, ...data.nodes.map((n) => n.order + 1)) * (H + GAP_Y);
    const edges = data.edges.map((e) => {
      const a = at[e.source], b = at[e.target];
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
      return `<g class="edge ${e.secured ? "secured" : "plain"}" data-source="${esc(e.source)}" data-target="${esc(e.target)}">
        <path d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2 - 6},${y2}" marker-end="url(#arrow)"></path>
        <title>${esc(e.src)} -> ${esc(e.dst)}: ${num(e.rps)} rps, ${pct(e.success)}</title>
        <text x="${mx}" y="${(y1 + y2) / 2 - 4}" text-anchor="middle">${num(e.rps)} rps</text></g>`;
    }).join("");
    const nodes = data.nodes.map((n) => `<g class="node" data-id="${esc(n.id)}"><rect x="${at[n.id].x}" y="${at[n.id].y}" width="${W}" height="${H}" rx="4"></rect>
      <text x="${at[n.id].x + 8}" y="${at[n.id].y + 19}">${esc(n.namespace === ns ? n.name : n.namespace + "/" + n.name)}</text></g>`).join("");
    const table = data.edges.map((e) => `<tr data-source="${esc(e.source)}" data-target="${esc(e.target)}"><td>${esc(e.src_namespace)}/${esc(e.src)}</td><td class="text">${esc(e.dst_namespace)}/${esc(e.dst)}</td>` +
      `<td class="text">${esc(e.client_id || "-")}</td><td class="text">${esc(e.server_id || "-")}</td>` + cell(e.secured ? "yes" : "no", e.secured, e.secured ? "good" : "bad") + goldenCells(e) + "</tr>").join("");
    return `<h2>Who calls whom in ${esc(ns)} <span class="note">(last ${data.window_seconds}s; dashed: not mTLS)</span></h2>
      <svg data-testid="graph" width="${width}" height="${height}"><defs><marker id="arrow" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#6a7a8c"></path></marker></defs>${edges}${nodes}</svg>
      <h2>Edges</h2><table data-testid="edges"><tr><th>From</th><th class="text">To</th><th class="text">Client identity</th><th class="text">Server identity</th><th>mTLS</th>${GOLDEN_HEADERS}</tr>${table}</table>`;
  },
  async splits(ns) {
    const data = await getJSON(`/api/splits?namespace=${encodeURIComponent(ns)}`);
    const splits = data.splits.map((s) => `<h2>TrafficSplit ${esc(s.name)} <span class="note">(apex ${esc(s.apex)})</span></h2>
      <table data-testid="split" data-name="${esc(s.name)}"><tr><th>Backend</th><th>Weight</th><th>Weight share</th><th>Traffic share</th>${GOLDEN_HEADERS}</tr>` +
      s.backends.map((b) => `<tr data-backend="${esc(b.backend)}"><td>${esc(b.backend)}</td>` + cell(b.weight, b.weight, "weight") +
        `<td class="weight-share" data-value="${esc(b.weight_share ?? "")}"><span class="bar" style="width:${(b.weight_share || 0) * 80}px"></span> ${pct(b.weight_share)}</td>` +
        `<td class="traffic-share" data-value="${esc(b.traffic_share ?? "")}"><span class="bar traffic" style="width:${(b.traffic_share || 0) * 80}px"></span> ${pct(b.traffic_share)}</td>` +
        goldenCells(b) + "</tr>").join("") + "</table>").join("");
    const invalid = data.invalid.map((line) => `<p class="error">${esc(line)}</p>`).join("");
    return (splits || `<p class="note">No TrafficSplit in ${esc(ns)}.</p>`) + invalid +
      `<p class="note">Traffic share: what the clients' proxies in ${esc(ns)} sent each backend in the last ${data.window_seconds}s.</p>`;
  },
  async routes(ns) {
    const data = await getJSON(`/api/routes?namespace=${encodeURIComponent(ns)}`);
    const profiles = data.profiles.map((p) => `<h2>ServiceProfile ${esc(p.name)}</h2>
      <table data-testid="routes" data-name="${esc(p.name)}"><tr><th>Route</th>${GOLDEN_HEADERS}<th>Actual success</th><th>Actual RPS</th></tr>` +
      p.routes.map((r) => `<tr data-route="${esc(r.route)}"><td>${esc(r.route)}</td>` + goldenCells(r) + cell(pct(r.actual_success), r.actual_success, "actual-success") + cell(num(r.actual_rps), r.actual_rps, "actual-rps") + "</tr>").join("") + "</table>").join("");
    return (profiles || `<p class="note">No ServiceProfile in ${esc(ns)}.</p>`) + data.invalid.map((l) => `<p class="error">${esc(l)}</p>`).join("");
  },
  async resources(ns) {
    const data = await getJSON(`/api/resources?namespace=${encodeURIComponent(ns)}`);
    const rows = data.rows.map((r) => `<tr data-kind="${esc(r.kind)}" data-name="${esc(r.name)}"><td>${esc(r.kind)}</td><td class="text">${esc(r.name)}</td>` +
      r.conditions.map((c) => `<td class="text cond-${esc(c.status || "none")}" data-type="${esc(c.type)}" data-value="${esc(c.status)}" title="${esc(c.reason)}: ${esc(c.message)}">${esc(c.status || "-")}${c.type === "Programmed" && c.message ? " (" + esc(c.message) + ")" : ""}</td>`).join("") + "</tr>").join("");
    const missing = data.missing_kinds.length ? `<p class="note">Not served by this cluster: ${esc(data.missing_kinds.join(", "))}</p>` : "";
    return `<h2>Weft resources in ${esc(ns)}</h2><table data-testid="resources"><tr><th>Kind</th><th class="text">Name</th><th class="text">Accepted</th><th class="text">ResolvedRefs</th><th class="text">Ready</th><th class="text">Programmed</th></tr>${rows}</table>${missing}`;
  },
};

function tapPage(ns, config) {
  if (!config.tap) {
    main.innerHTML = `<p class="error" data-testid="tap-off">Tap is off: it would show requests' paths and identities to whoever reaches this port. Install with <code>weft viz install --tap</code> to turn it on.</p>`;
    return;
  }
  main.innerHTML = `<h2>Live tap in ${esc(ns)}</h2>
    <form class="filters" id="tap-form"><label>workload <input name="workload" placeholder="deploy/web"></label>
    <label>path prefix <input name="path" placeholder="/api"></label><label>method <input name="method" size="6" placeholder="GET"></label>
    <button type="submit">Watch</button></form>
    <table data-testid="tap"><thead><tr><th>Time</th><th class="text">Proxy</th><th class="text">Dir</th><th class="text">From</th><th class="text">Method</th><th class="text">Authority</th><th class="text">Path</th><th>Status</th><th>Latency</th><th class="text">mTLS</th></tr></thead><tbody></tbody></table>`;
  const form = document.getElementById("tap-form");
  const body = main.querySelector("tbody");
  const start = () => {
    clearTimeout(tapRetry);
    if (tapSource) tapSource.close();
    const query = new URLSearchParams({namespace: ns});
    for (const [k, v] of new FormData(form)) if (v) query.set(k, v);
    tapSource = new EventSource(`/api/tap?${query}`);
    tapSource.onmessage = (message) => {
      const e = JSON.parse(message.data);
      const row = document.createElement("tr");
      row.innerHTML = `<td>${esc(e.time)}</td><td class="text">${esc(e.proxy)}</td><td class="text">${esc(e.direction)}</td><td class="text">${esc(e.source_identity || e.source_name || e.source)}</td>` +
        `<td class="text">${esc(e.method)}</td><td class="text">${esc(e.authority)}</td><td class="text path">${esc(e.path)}</td>` +
        `<td class="${e.status >= 500 ? "bad" : ""}">${esc(e.status)}</td><td>${num(e.latency_ms, 1)} ms</td><td class="text">${e.tls ? "yes" : "no"}</td>`;
      body.prepend(row);
      while (body.rows.length > 200) body.deleteRow(-1);
      status.textContent = "tap: streaming";
    };
    tapSource.onerror = () => {
      status.textContent = "tap: reconnecting";
      // EventSource retries a stream that ended, but gives up for good on an error answer
      // (every tap slot taken, the pods not readable for a moment): start it again.
      if (tapSource.readyState === EventSource.CLOSED) tapRetry = setTimeout(start, 3000);
    };
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); body.innerHTML = ""; start(); });
  start();
}

let config = null;
let shown = 0;  // which show() the page is: a render still awaited for an earlier one is dropped

async function show() {
  const mine = ++shown;
  clearTimeout(timer);
  clearTimeout(tapRetry);
  if (tapSource) { tapSource.close(); tapSource = null; }
  const {page, namespace} = route();
  const ns = namespace || select.value || "default";
  for (const link of document.querySelectorAll("#nav a")) {
    link.href = `#/${link.dataset.page}/${encodeURIComponent(ns)}`;
    link.classList.toggle("active", link.dataset.page === page);
  }
  main.dataset.loaded = "";
  main.dataset.page = page;
  if (page === "tap") { tapPage(ns, config); main.dataset.loaded = "true"; return; }
  const render = pages[page] || pages.namespaces;
  const draw = async () => {
    let html, failed = false;
    try {
      html = await render(ns);
    } catch (error) {
      html = `<p class="error" data-testid="error">${esc(error.message)}</p>`;
      failed = true;
    }
    // The user (or a test) went to another page while this one was fetched: drawing it
    // now would replace that page, the tap page's form and table among them.
    if (mine !== shown) return;
    main.innerHTML = html;
    if (!failed) {
      status.textContent = "updated " + new Date().toLocaleTimeString();
      main.dataset.loaded = "true";
    }
    timer = setTimeout(draw, POLL_MS);
  };
  await draw();
}

async function start() {
  config = await getJSON("/api/config");
  const names = (await getJSON("/api/namespace-names")).namespaces;
  const wanted = route().namespace;
  select.innerHTML = names.map((n) => `<option${n === wanted ? " selected" : ""}>${esc(n)}</option>`).join("");
  select.addEventListener("change", () => { location.hash = `#/${route().page === "namespaces" ? "workloads" : route().page}/${encodeURIComponent(select.value)}`; });
  window.addEventListener("hashchange", show);
  await show();
}

start();
