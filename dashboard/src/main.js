// The Davy dashboard page: the rollouts of a namespace and one rollout's tree, redrawn from the
// server-sent snapshots of /api/namespaces/{ns}/watch (the server watches; the page never polls).
import { h, render } from "preact";
import { useEffect, useState } from "preact/hooks";
import htm from "htm";
import { Chart } from "./chart.js";

const html = htm.bind(h);

// The token arrives once as ?token=…; it is kept for the tab and sent on every request.
const given = new URLSearchParams(location.search).get("token");
if (given) sessionStorage.setItem("davy-token", given);
const token = () => sessionStorage.getItem("davy-token") || "";

async function call(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  const res = await fetch(path, { ...options, headers });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
  return body;
}

// Location: #/<namespace>[/<rollout>]
function route() {
  const [ns, name] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  return { ns: ns || "", name: name || "" };
}

function useRoute() {
  const [r, setR] = useState(route());
  useEffect(() => {
    const on = () => setR(route());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return r;
}

function useSnapshot(ns, name) {
  const [snap, setSnap] = useState(null);
  const [live, setLive] = useState(false);
  useEffect(() => {
    if (!ns) return undefined;
    setSnap(null);
    const q = new URLSearchParams({ rollout: name, token: token() });
    const source = new EventSource(`/api/namespaces/${encodeURIComponent(ns)}/watch?${q}`);
    source.addEventListener("snapshot", (e) => setSnap(JSON.parse(e.data)));
    source.onopen = () => setLive(true);
    source.onerror = () => setLive(false);
    return () => source.close();
  }, [ns, name]);
  return [snap, live];
}

const STATUS_CLASS = {
  Healthy: "ok",
  Successful: "ok",
  Progressing: "busy",
  Running: "busy",
  Paused: "paused",
  Degraded: "bad",
  Failed: "bad",
  Error: "warn",
  InvalidSpec: "warn",
};

function Status({ status, icon, testid }) {
  return html`<span class="status ${STATUS_CLASS[status] || ""}" data-testid=${testid}>
    <span class="icon">${icon}</span> ${status}</span>`;
}

function List({ ns, rows }) {
  if (!rows.length) return html`<p class="empty" data-testid="no-rollouts">No rollouts in ${ns}.</p>`;
  return html`<div class="cards">
    ${rows.map(
      (r) => html`<a class="card" href=${`#/${encodeURIComponent(ns)}/${encodeURIComponent(r.name)}`}
        data-testid=${`rollout-row-${r.name}`}>
        <div class="card-title">${r.name}</div>
        <${Status} status=${r.status} icon=${r.icon} testid=${`rollout-status-${r.name}`} />
        <div class="facts">
          <span>${r.strategy}</span>
          ${r.step && html`<span>step ${r.step}</span>`}
          ${r.setWeight && html`<span>weight ${r.actualWeight || r.setWeight}%</span>`}
          <span>${r.available}/${r.desired} available</span>
        </div>
        <div class="images">${r.images.map((i) => html`<code>${i}</code>`)}</div>
      </a>`,
    )}
  </div>`;
}

const ACTIONS = [
  ["promote", "Promote"],
  ["promote-full", "Promote full"],
  ["abort", "Abort"],
  ["retry", "Retry"],
  ["restart", "Restart"],
  ["undo", "Undo"],
];

function Actions({ ns, ro, readOnly, onResult }) {
  const [image, setImage] = useState("");
  if (readOnly) return html`<p class="readonly" data-testid="read-only">Read-only dashboard</p>`;
  const run = async (action, body) => {
    try {
      const res = await call(
        `/api/namespaces/${encodeURIComponent(ns)}/rollouts/${encodeURIComponent(ro.name)}/${action}`,
        { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) },
      );
      onResult({ ok: true, text: res.message });
    } catch (e) {
      onResult({ ok: false, text: e.message });
    }
  };
  const container = ro.containers[0] ? ro.containers[0].name : "";
  return html`<div class="actions">
    ${ACTIONS.map(
      ([action, label]) => html`<button data-testid=${`action-${action}`} onClick=${() => run(action)}>${label}</button>`,
    )}
    <form class="set-image" onSubmit=${(e) => {
      e.preventDefault();
      run("set-image", { image: image.includes("=") ? image : `${container}=${image}` });
    }}>
      <input data-testid="image-input" placeholder=${`${container}=image:tag`} value=${image}
        onInput=${(e) => setImage(e.target.value)} />
      <button data-testid="action-set-image" type="submit">Set image</button>
    </form>
  </div>`;
}

function ReplicaSet({ rs }) {
  return html`<li class="rs" data-testid=${`rs-${rs.name}`}>
    <div><${Status} status=${rs.status} icon=${rs.icon} /> <b>${rs.name}</b>
      ${rs.tags.map((t) => html` <span class="tag ${t}">${t}</span>`)}
      <span class="muted"> ${rs.available}/${rs.replicas} · ${rs.images.join(", ")} · ${rs.age}</span></div>
    <ul class="pods">${rs.pods.map(
      (p) => html`<li class="pod ${STATUS_CLASS[p.status] || ""}" title=${`${p.name} ${p.status} ${p.ready}`}>${p.icon} ${p.name}
        <span class="muted"> ${p.status} ${p.ready}</span></li>`,
    )}</ul>
  </li>`;
}

function Analysis({ ar }) {
  return html`<li class="ar" data-testid=${`ar-${ar.name}`}>
    <div><${Status} status=${ar.status} icon=${ar.icon} /> <b>${ar.name}</b>
      <span class="muted"> ✔ ${ar.successful} ✖ ${ar.failed} ? ${ar.inconclusive} ⚠ ${ar.error} · ${ar.age}</span></div>
    <div class="charts">${ar.metrics.map((m) => html`<${Chart} metric=${m} />`)}</div>
  </li>`;
}

function Tree({ ro }) {
  const revisions = [...new Set(ro.replicaSets.map((rs) => rs.revision))].sort((a, b) => b - a);
  return html`<div class="tree">
    ${revisions.map(
      (rev) => html`<section class="revision" data-testid=${`revision-${rev}`}>
        <h3>revision ${rev}</h3>
        <ul>${ro.replicaSets.filter((rs) => rs.revision === rev).map((rs) => html`<${ReplicaSet} rs=${rs} />`)}</ul>
        <ul>${ro.analysisRuns.filter((ar) => ar.revision === rev).map((ar) => html`<${Analysis} ar=${ar} />`)}</ul>
        <ul>${ro.experiments.filter((ex) => ex.revision === rev).map(
          (ex) => html`<li class="ex"><${Status} status=${ex.status} icon=${ex.icon} /> <b>${ex.name}</b> <span class="muted">${ex.message}</span>
            <ul>${ex.replicaSets.map((rs) => html`<${ReplicaSet} rs=${rs} />`)}</ul>
            <ul>${ex.analysisRuns.map((ar) => html`<${Analysis} ar=${ar} />`)}</ul></li>`,
        )}</ul>
      </section>`,
    )}
  </div>`;
}

function Detail({ ns, ro, readOnly }) {
  const [result, setResult] = useState(null);
  return html`<div class="detail" data-testid="rollout-detail">
    <a href=${`#/${encodeURIComponent(ns)}`} class="back">← ${ns}</a>
    <h2 data-testid="rollout-name">${ro.name}</h2>
    <div class="header">
      <${Status} status=${ro.status} icon=${ro.icon} testid="rollout-status" />
      ${ro.message && html`<span class="message" data-testid="rollout-message">${ro.message}</span>`}
      <dl>
        <dt>Strategy</dt><dd>${ro.strategy}</dd>
        ${ro.step && html`<dt>Step</dt><dd data-testid="rollout-step">${ro.step}</dd>`}
        ${ro.setWeight && html`<dt>Set weight</dt><dd data-testid="rollout-set-weight">${ro.setWeight}</dd>`}
        ${ro.actualWeight && html`<dt>Actual weight</dt><dd>${ro.actualWeight}</dd>`}
        <dt>Images</dt><dd>${ro.containers.map((c) => html`<code>${c.name}=${c.image}</code> `)}</dd>
        <dt>Replicas</dt><dd>${ro.desired} desired · ${ro.current} current · ${ro.updated} updated · ${ro.ready} ready · ${ro.available} available</dd>
      </dl>
    </div>
    <${Actions} ns=${ns} ro=${ro} readOnly=${readOnly} onResult=${setResult} />
    ${result && html`<p class=${result.ok ? "result ok" : "result bad"} data-testid="action-result">${result.text}</p>`}
    <${Tree} ro=${ro} />
  </div>`;
}

function App() {
  const { ns: routeNs, name } = useRoute();
  const [config, setConfig] = useState(null);
  const [namespaces, setNamespaces] = useState([]);
  const [error, setError] = useState("");
  useEffect(() => {
    call("/api/config").then(setConfig).catch((e) => setError(e.message));
    call("/api/namespaces").then(setNamespaces).catch(() => {});
  }, []);
  const ns = routeNs || (config && config.namespace) || "";
  const [snap, live] = useSnapshot(ns, name);
  if (error) return html`<p class="result bad" data-testid="error">${error}</p>`;
  if (!config) return html`<p class="muted">Loading…</p>`;
  return html`<div>
    <header>
      <a href="#/" class="brand">Davy</a>
      <select data-testid="namespace" value=${ns} onChange=${(e) => (location.hash = `#/${encodeURIComponent(e.target.value)}`)}>
        ${namespaces.map((n) => html`<option value=${n}>${n}</option>`)}
      </select>
      <span class=${live ? "live on" : "live"} data-testid="live">${live ? "live" : "connecting…"}</span>
    </header>
    <main>
      ${!snap
        ? html`<p class="muted">Loading…</p>`
        : name
          ? snap.rollout
            ? html`<${Detail} ns=${ns} ro=${snap.rollout} readOnly=${config.readOnly} />`
            : html`<p class="result bad">rollout.argoproj.io "${name}" not found</p>`
          : html`<${List} ns=${ns} rows=${snap.list} />`}
    </main>
  </div>`;
}

render(html`<${App} />`, document.getElementById("app"));
