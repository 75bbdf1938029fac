// modelgate model tester. Plain JavaScript, no dependencies.
//
// The access token lives only in this page's memory (`state.token`): never in storage, the
// URL, or a snippet (snippets read it from the MODELGATE_TOKEN environment variable).
// JSON is handled as text with a small parser that keeps numbers as written, so `11.0` is
// sent, shown and put in snippets as `11.0` (a float to the model), never `11`.
"use strict";

const state = {
  token: "",
  models: [],
  model: null,
  label: "latest",
  lang: "curl",
  inputs: new Map(), // model name -> the body typed for it
};

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ JSON as text

class JsonSyntaxError extends Error {}

/** Parse JSON text into a tree whose scalars keep their source text. */
function parseJson(text) {
  let i = 0;
  const fail = (what) => {
    const before = text.slice(0, i).split("\n");
    const line = before.length;
    const column = before[before.length - 1].length + 1;
    throw new JsonSyntaxError(`${what} at line ${line}, column ${column}`);
  };
  const space = () => { while (i < text.length && " \t\n\r".includes(text[i])) i++; };
  const string = () => {
    const start = i++;
    while (i < text.length && text[i] !== '"') {
      if (text[i] === "\\") i++;
      else if (text[i] < " ") fail("a control character inside a string");
      i++;
    }
    if (i >= text.length) fail("an unterminated string");
    i++;
    const raw = text.slice(start, i);
    try { JSON.parse(raw); } catch { fail("an invalid escape in a string"); }
    return { kind: "string", raw };
  };
  const value = () => {
    space();
    const c = text[i];
    if (c === "{") {
      i++;
      const entries = [];
      space();
      if (text[i] === "}") { i++; return { kind: "object", entries }; }
      for (;;) {
        space();
        if (text[i] !== '"') fail("expected a quoted key");
        const key = string();
        space();
        if (text[i] !== ":") fail("expected ':'");
        i++;
        entries.push([key, value()]);
        space();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "}") { i++; return { kind: "object", entries }; }
        fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const items = [];
      space();
      if (text[i] === "]") { i++; return { kind: "array", items }; }
      for (;;) {
        items.push(value());
        space();
        if (text[i] === ",") { i++; continue; }
        if (text[i] === "]") { i++; return { kind: "array", items }; }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    const number = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (number && number[0]) { i += number[0].length; return { kind: "number", raw: number[0] }; }
    for (const word of ["true", "false", "null"]) {
      if (text.startsWith(word, i)) { i += word.length; return { kind: "literal", raw: word }; }
    }
    fail(i >= text.length ? "unexpected end of input" : `unexpected '${c}'`);
  };
  const tree = value();
  space();
  if (i < text.length) fail("unexpected text after the JSON value");
  return tree;
}

const isScalar = (node) => node.kind !== "object" && node.kind !== "array";

/**
 * Lay a tree out as text pieces [text, cssClass]: a container that fits in `width` stays on
 * one line; `flavour` maps scalars to another language's literals (Python) when given.
 */
function layout(node, flavour = null, indent = "", width = 76, step = "  ") {
  const scalar = (n, key) => {
    const text = flavour ? flavour(n) : n.raw;
    const cls = key ? "k" : { string: "s", number: "n", literal: "l" }[n.kind];
    return [[text, cls]];
  };
  if (isScalar(node)) return scalar(node, false);
  const [open, close] = node.kind === "object" ? ["{", "}"] : ["[", "]"];
  const children = node.kind === "object" ? node.entries : node.items.map((v) => [null, v]);
  if (children.length === 0) return [[open + close, null]];
  const inline = [[open, null]];
  children.forEach(([k, v], n) => {
    if (n) inline.push([", ", null]);
    if (k) inline.push(...scalar(k, true), [": ", null]);
    inline.push(...layout(v, flavour, indent, Infinity, step));
  });
  inline.push([close, null]);
  if (indent.length + textOf(inline).length <= width) return inline;
  const inner = indent + step;
  if (node.kind === "array" && node.items.every(isScalar)) {
    return fill(node.items.map((item) => scalar(item, false)[0]), indent, inner, width);
  }
  const parts = [[open + "\n", null]];
  children.forEach(([k, v], n) => {
    parts.push([inner, null]);
    if (k) parts.push(...scalar(k, true), [": ", null]);
    parts.push(...layout(v, flavour, inner, width, step));
    parts.push([n < children.length - 1 ? ",\n" : "\n", null]);
  });
  parts.push([indent + close, null]);
  return parts;
}

/** A long array of scalars, packed into lines of `width` (as NumPy prints). */
function fill(pieces, indent, inner, width) {
  const parts = [["[\n" + inner, null]];
  let column = inner.length;
  pieces.forEach((piece, n) => {
    const last = n === pieces.length - 1;
    if (n && column + piece[0].length + 1 > width) {
      parts.push(["\n" + inner, null]);
      column = inner.length;
    } else if (n) {
      parts.push([" ", null]);
      column += 1;
    }
    parts.push(piece, [last ? "" : ",", null]);
    column += piece[0].length + 1;
  });
  parts.push(["\n" + indent + "]", null]);
  return parts;
}

const textOf = (parts) => parts.map(([t]) => t).join("");

/** One line, spaces after ':' and ',' (readable, and numbers exactly as written). */
function compact(node) {
  if (isScalar(node)) return node.raw;
  if (node.kind === "array") return "[" + node.items.map(compact).join(", ") + "]";
  return "{" + node.entries.map(([k, v]) => `${k.raw}: ${compact(v)}`).join(", ") + "}";
}

/** Render pieces into `element` as text nodes and spans (never as HTML). */
function paint(element, parts) {
  element.replaceChildren();
  for (const [text, cls] of parts) {
    if (!cls) { element.append(text); continue; }
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    element.append(span);
  }
}

// ------------------------------------------------------------------ snippets

const shellQuote = (s) => "'" + s.replace(/'/g, "'\\''") + "'";
const singleQuoted = (s) => "'" + s.replace(/\\/g, "\\\\").replace(/'/g, "\\'") + "'";

function pythonScalar(node) {
  if (node.kind === "literal") return { true: "True", false: "False", null: "None" }[node.raw];
  if (node.kind === "number") return node.raw;
  return JSON.stringify(JSON.parse(node.raw)); // JSON's escapes are Python's too
}

const SNIPPETS = {
  curl(url, body, restricted) {
    return [
      `curl -X POST ${shellQuote(url)} \\`,
      `  -H 'Content-Type: application/json' \\`,
      ...(restricted ? [`  -H "Authorization: Bearer $MODELGATE_TOKEN" \\`] : []),
      `  -d ${shellQuote(compact(body))}`,
    ].join("\n");
  },
  python(url, body, restricted) {
    const literal = textOf(layout(body, pythonScalar, "    ", 84, "    "));
    return [
      ...(restricted ? ["import os", ""] : []),
      "import requests",
      "",
      "response = requests.post(",
      `    ${JSON.stringify(url)},`,
      `    json=${literal},`,
      ...(restricted ? [`    headers={"Authorization": f"Bearer {os.environ['MODELGATE_TOKEN']}"},`]
        : []),
      "    timeout=60,",
      ")",
      "print(response.status_code, response.json())",
    ].join("\n");
  },
  r(url, body, restricted) {
    return [
      "library(httr)",
      "",
      "response <- POST(",
      `  ${JSON.stringify(url)},`,
      `  body = ${singleQuoted(compact(body))},`,
      "  content_type_json(),",
      ...(restricted
        ? ['  add_headers(Authorization = paste("Bearer", Sys.getenv("MODELGATE_TOKEN"))),']
        : []),
      "  timeout(60)",
      ")",
      "str(content(response))",
    ].join("\n");
  },
  javascript(url, body, restricted) {
    return [
      `const response = await fetch(${JSON.stringify(url)}, {`,
      '  method: "POST",',
      "  headers: {",
      '    "Content-Type": "application/json",',
      ...(restricted ? ["    Authorization: `Bearer ${process.env.MODELGATE_TOKEN}`,"] : []),
      "  },",
      `  body: ${singleQuoted(compact(body))},`,
      "});",
      "console.log(response.status, await response.json());",
    ].join("\n");
  },
};

// ------------------------------------------------------------------ the catalogue

function authHeaders() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

async function loadModels() {
  const note = $("token-note");
  note.classList.remove("bad");
  let response = await fetch("/ui/models.json", { headers: authHeaders(), cache: "no-store" });
  if (response.status === 401 && state.token) {
    note.textContent = "This token is not valid: showing public models only.";
    note.classList.add("bad");
    response = await fetch("/ui/models.json", { cache: "no-store" });
  } else if (state.token) {
    note.textContent = "";
  }
  if (!response.ok) throw new Error(`the model list answered ${response.status}`);
  const catalogue = await response.json();
  state.models = catalogue.models;
  if (catalogue.token) {
    note.textContent = `Using token “${catalogue.token}”: public models and the ones it may call.`;
  } else if (!state.token) {
    note.textContent = "Showing public models. Enter an access token to see the restricted "
      + "models it may call.";
  }
  $("token-clear").hidden = !state.token;
  renderList();
  let wanted = "";
  try { wanted = decodeURIComponent(location.hash.slice(1)); } catch { /* a mangled link */ }
  const keep = state.models.find((m) => m.name === (state.model?.name ?? wanted));
  selectModel(keep ?? state.models[0] ?? null);
}

function renderList() {
  const filter = $("filter").value.trim().toLowerCase();
  const list = $("models");
  list.replaceChildren();
  const shown = state.models.filter((m) => !filter
    || m.name.toLowerCase().includes(filter) || m.description.toLowerCase().includes(filter));
  $("model-count").textContent = `${shown.length} of ${state.models.length}`;
  for (const model of shown) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.model = model.name;
    button.setAttribute("aria-current", String(state.model?.name === model.name));
    const name = document.createElement("div");
    name.className = "name";
    name.append(model.name, badge(model));
    const desc = document.createElement("div");
    desc.className = "desc";
    desc.textContent = model.description || "No description";
    const versions = document.createElement("div");
    versions.className = "versions";
    versions.textContent = model.versions.map((v) => `v${v}`).join(" · ");
    button.append(name, desc, versions);
    button.addEventListener("click", () => selectModel(model));
    item.append(button);
    list.append(item);
  }
  if (!state.models.length) {
    $("empty-text").textContent = state.token
      ? "No model is visible with this token."
      : "No public model here. Enter an access token to see the models it may call.";
  }
}

function badge(model) {
  const span = document.createElement("span");
  span.className = `badge ${model.public ? "public" : "restricted"}`;
  span.textContent = model.public ? "public" : "restricted";
  return span;
}

// ------------------------------------------------------------------ one model

function selectModel(model) {
  if (state.model) state.inputs.set(state.model.name, $("input").value);
  state.model = model;
  $("empty").hidden = Boolean(model);
  $("tester").hidden = !model;
  for (const b of $("models").querySelectorAll("button")) {
    b.setAttribute("aria-current", String(b.dataset.model === model?.name));
  }
  if (!model) { stopManaging(); return; }
  history.replaceState(null, "", `#${encodeURIComponent(model.name)}`);
  $("model-name").textContent = model.name;
  const access = badge(model);
  $("model-access").className = access.className;
  $("model-access").textContent = access.textContent;
  $("model-description").textContent = model.description;
  const select = $("version");
  select.replaceChildren(
    new Option(`latest (v${model.latest})`, "latest"),
    new Option(`prod (v${model.production})`, "prod"),
    ...model.versions.map((v) => new Option(`v${v}`, String(v))),
  );
  select.value = "latest";
  state.label = "latest";
  $("input").value = state.inputs.get(model.name) ?? prettyExample(model);
  clearResponse();
  validateInput();
  updateEndpoint();
  manage.previous = new Map();
  manage.at = 0;
  refreshManage();
}

function prettyExample(model) {
  try { return textOf(layout(parseJson(model.example))); } catch { return model.example; }
}

function modelPath() {
  const name = encodeURIComponent(state.model.name);
  const label = state.label === "prod" ? "labels/prod" : state.label;
  return `/models/${name}/${label}/model`;
}

function updateEndpoint() {
  const url = location.origin + modelPath();
  $("url").textContent = url;
  let body;
  try { body = parseJson($("input").value); } catch { body = null; }
  const note = $("snippet-note");
  if (body === null) {
    note.textContent = "The request body is not valid JSON yet; the snippet shows the example.";
    body = parseJson(state.model.example);
  } else {
    note.textContent = state.model.public ? ""
      : "Restricted model: the snippet reads the token from the MODELGATE_TOKEN environment "
        + "variable.";
  }
  $("snippet").textContent = SNIPPETS[state.lang](url, body, !state.model.public);
  for (const tab of document.querySelectorAll(".tabs button")) {
    tab.setAttribute("aria-selected", String(tab.dataset.lang === state.lang));
  }
}

function validateInput() {
  const error = $("input-error");
  try {
    parseJson($("input").value);
    error.textContent = "";
    $("input").classList.remove("invalid");
    return true;
  } catch (e) {
    if (!(e instanceof JsonSyntaxError)) throw e;
    error.textContent = `Not valid JSON: ${e.message}`;
    $("input").classList.add("invalid");
    return false;
  }
}

// ------------------------------------------------------------------ sending

function clearResponse() {
  $("status").replaceChildren();
  $("error-box").hidden = true;
  const output = $("output");
  output.className = "json placeholder";
  output.textContent = "Send a request to see the response here.";
}

function showStatus(pillClass, pillText, details) {
  const pill = document.createElement("span");
  pill.className = `pill ${pillClass}`;
  pill.textContent = pillText;
  pill.id = "status-code";
  const rest = document.createElement("span");
  rest.id = "timing";
  rest.textContent = details;
  $("status").replaceChildren(pill, rest);
}

async function send() {
  if (!state.model || !validateInput()) return;
  const button = $("send");
  button.disabled = true;
  showStatus("busy", "sending…", "");
  const started = performance.now();
  try {
    const response = await fetch(modelPath(), {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: $("input").value,
    });
    const text = await response.text();
    const ms = performance.now() - started;
    showResponse(response, text, ms);
  } catch (e) {
    showStatus("bad", "network error", "");
    showError("network_error", `The gateway could not be reached: ${e.message}`, null);
    $("output").textContent = "";
  } finally {
    button.disabled = false;
  }
}

function showResponse(response, text, ms) {
  const output = $("output");
  output.className = "json";
  let tree = null;
  try { tree = parseJson(text); } catch { /* not JSON: shown as it is */ }
  let body = null;
  try { body = JSON.parse(text); } catch { /* idem */ }
  const timing = [`round trip ${milliseconds(ms)}`];
  if (body && typeof body.model_time_in_ms === "number") {
    timing.push(`model ${milliseconds(body.model_time_in_ms)}`);
  }
  showStatus(response.ok ? "ok" : "bad",
    `${response.status} ${response.statusText || ""}`.trim(), timing.join(" · "));
  const error = body && typeof body.error === "object" && body.error;
  if (error) {
    let message = error.message;
    if (response.status === 401 && state.model && !state.model.public) {
      message += state.token ? "" : " — enter an access token at the top right.";
    }
    showError(error.type, message, error.request_id);
  } else {
    $("error-box").hidden = true;
  }
  if (tree) paint(output, layout(tree));
  else output.textContent = text || "(empty body)";
}

function milliseconds(ms) {
  return `${ms.toFixed(ms < 1 ? 3 : ms < 10 ? 2 : 1)} ms`;
}

function showError(type, message, requestId) {
  const box = $("error-box");
  const title = document.createElement("strong");
  title.textContent = type;
  const text = document.createElement("p");
  text.className = "message";
  text.textContent = message;
  box.replaceChildren(title, text);
  if (requestId) {
    const rid = document.createElement("div");
    rid.className = "rid";
    rid.textContent = `request id ${requestId}`;
    box.append(rid);
  }
  box.hidden = false;
}

// ------------------------------------------------------------------ copying

async function copySnippet() {
  const text = $("snippet").textContent;
  const button = $("copy");
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = document.createElement("textarea"); // no clipboard API (plain http)
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  button.textContent = "Copied ✓";
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
}

// ------------------------------------------------------------------ managing (admin tokens)
//
// Shown when the token is an admin's: the model's versions with their live load (two readings
// of the gateway's counters, diffed), promote / unpublish / rollback after a confirmation,
// the audit trail and the workers' last log lines. Refreshed every MANAGE_EVERY_MS.

const MANAGE_EVERY_MS = 2000;
const manage = { timer: null, previous: new Map(), at: 0 };

async function adminJson(path, options = {}) {
  // POSTs carry a JSON body: the admin API takes no other type (what a cross-site form sends)
  const json = options.method === "POST" && options.body === undefined
    ? { body: "{}", headers: { "Content-Type": "application/json" } } : {};
  const response = await fetch(path, {
    ...options, ...(json.body ? { body: json.body } : {}), cache: "no-store",
    headers: { ...authHeaders(), ...(json.headers || {}), ...(options.headers || {}) },
  });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(body?.error?.message ?? `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function stopManaging() {
  clearTimeout(manage.timer);
  manage.timer = null;
  $("manage").hidden = true;
}

async function refreshManage() {
  clearTimeout(manage.timer);
  const model = state.model;
  if (!model || !state.token) { stopManaging(); return; }
  const base = `/admin/models/${encodeURIComponent(model.name)}`;
  let listed, load, audit, logs;
  try {
    [listed, load, audit, logs] = await Promise.all([
      adminJson(`${base}/versions`), adminJson(`${base}/stats`),
      adminJson(`/admin/audit?model=${encodeURIComponent(model.name)}&limit=12`),
      adminJson(`${base}/logs?limit=40`),
    ]);
  } catch (error) {
    if (error.status === 401 || error.status === 403) { stopManaging(); return; }
    $("manage-status").textContent = `Could not refresh: ${error.message}`;
    manage.timer = setTimeout(refreshManage, MANAGE_EVERY_MS);
    return;
  }
  if (state.model !== model) return; // another model was chosen meanwhile
  $("manage").hidden = false;
  renderVersions(model, listed, load);
  renderAudit(audit.lines);
  $("worker-logs").textContent = logs.lines.map(logText).join("\n") || "No worker log lines yet.";
  manage.timer = setTimeout(refreshManage, MANAGE_EVERY_MS);
}

function renderVersions(model, listed, load) {
  const now = performance.now();
  const seconds = manage.at ? (now - manage.at) / 1000 : 0;
  const counters = new Map(load.versions.map((v) => [v.version, v]));
  const body = $("versions-body");
  body.replaceChildren();
  for (const v of listed.versions) {
    const row = document.createElement("tr");
    row.dataset.version = String(v.number);
    if (v.production) row.className = "production";
    const live = liveLoad(counters.get(v.number), manage.previous.get(v.number), seconds,
                          load.bounds_ms);
    const cells = [
      `v${v.number}${v.production ? " · prod" : ""}`, v.state, v.function,
      v.created ? new Date(v.created).toLocaleString() : "–", v.actor ?? "–",
      live.rate, live.p50, live.p99, live.errors,
    ];
    for (const text of cells) {
      const cell = document.createElement("td");
      cell.textContent = text;
      row.append(cell);
    }
    const actions = document.createElement("td");
    actions.className = "row-actions";
    if (!v.production && v.state !== "unpublished" && model.routing === "advanced") {
      actions.append(actionButton("Promote", `promote-${v.number}`,
        `Send all production traffic of ${model.name} to v${v.number}?`,
        () => adminJson(`/admin/models/${encodeURIComponent(model.name)}/promote`, {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ version: v.number }),
        })));
    }
    if (!v.production && v.state !== "unpublished") {
      actions.append(actionButton("Unpublish", `unpublish-${v.number}`,
        `Stop serving v${v.number} of ${model.name}? Its calls will get 404.`,
        () => adminJson(`/admin/models/${encodeURIComponent(model.name)}/versions/`
          + `${v.number}/unpublish`, { method: "POST" })));
    }
    row.append(actions);
    body.append(row);
  }
  $("rollback").hidden = model.routing !== "advanced";
  manage.previous = counters;
  manage.at = now;
}

/** Rate, p50, p99 and errors between two readings (or since the start, on the first one). */
function liveLoad(current, previous, seconds, bounds) {
  if (!current) return { rate: "–", p50: "–", p99: "–", errors: "0" };
  const base = previous ?? { requests: 0, errors: 0, latency_buckets: current.latency_buckets.map(() => 0) };
  const buckets = current.latency_buckets.map((n, i) => n - (base.latency_buckets[i] ?? 0));
  const total = buckets.reduce((a, b) => a + b, 0);
  const quantile = (q) => {
    if (!total) return "–";
    let seen = 0;
    for (let i = 0; i < buckets.length; i++) {
      seen += buckets[i];
      if (seen >= q * total) return i < bounds.length ? `≤ ${milliseconds(bounds[i])}` : `> ${milliseconds(bounds[bounds.length - 1])}`;
    }
    return "–";
  };
  const rate = previous && seconds > 0 ? ((current.requests - previous.requests) / seconds).toFixed(1) : "–";
  return { rate, p50: quantile(0.5), p99: quantile(0.99), errors: String(current.errors) };
}

function actionButton(label, id, question, act) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button ghost small";
  button.dataset.action = id;
  button.textContent = label;
  button.addEventListener("click", () => runAction(question, act));
  return button;
}

async function runAction(question, act) {
  if (!window.confirm(question)) return;
  const status = $("manage-status");
  status.textContent = "Working…";
  try {
    const result = await act();
    status.textContent = result.message;
  } catch (error) {
    status.textContent = `Refused: ${error.message}`;
  }
  await loadModels().catch(showLoadError);
}

function renderAudit(lines) {
  const list = $("audit");
  list.replaceChildren();
  for (const line of [...lines].reverse()) {
    const item = document.createElement("li");
    const moved = line.before !== line.after && line.after !== null
      ? ` (prod v${line.before ?? "–"} → v${line.after})` : "";
    const version = line.version !== null ? ` v${line.version}` : "";
    item.textContent = `${new Date(line.time).toLocaleString()} · ${line.actor} · `
      + `${line.action}${version}${moved}${line.result === "failed" ? " · failed" : ""}`;
    list.append(item);
  }
}

function logText(entry) {
  const line = entry.line;
  const what = line.text ?? line.message ?? line.r_error ?? line.event;
  const rid = line.request_id ? ` [${line.request_id}]` : "";
  return `v${entry.version} ${line.level ?? ""} ${line.event}${rid}: ${what}`;
}

// ------------------------------------------------------------------ wiring

function start() {
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    loadModels().catch(showLoadError);
  });
  $("token-clear").addEventListener("click", () => {
    state.token = "";
    $("token").value = "";
    loadModels().catch(showLoadError);
  });
  $("filter").addEventListener("input", renderList);
  $("version").addEventListener("change", (event) => {
    state.label = event.target.value;
    updateEndpoint();
  });
  $("input").addEventListener("input", () => { validateInput(); updateEndpoint(); });
  $("input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      send();
    }
  });
  $("send").addEventListener("click", send);
  $("format").addEventListener("click", () => {
    if (!validateInput()) return;
    $("input").value = textOf(layout(parseJson($("input").value)));
  });
  $("reset").addEventListener("click", () => {
    $("input").value = prettyExample(state.model);
    validateInput();
    updateEndpoint();
  });
  for (const tab of document.querySelectorAll(".tabs button")) {
    tab.addEventListener("click", () => { state.lang = tab.dataset.lang; updateEndpoint(); });
  }
  $("copy").addEventListener("click", copySnippet);
  $("rollback").addEventListener("click", () => {
    const name = state.model.name;
    runAction(`Roll ${name} back to the version promoted before the current one?`,
      () => adminJson(`/admin/models/${encodeURIComponent(name)}/rollback`, { method: "POST" }));
  });
  loadModels().catch(showLoadError);
}

function showLoadError(error) {
  $("empty").hidden = false;
  $("tester").hidden = true;
  $("empty-text").textContent = `Could not load the models: ${error.message}`;
}

start();
