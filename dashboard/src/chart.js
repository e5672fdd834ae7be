// A metric's measurements over time as a small SVG chart, with the condition's threshold drawn
// as a dashed line: a chart is read faster than a table of numbers.
import { h } from "preact";
import htm from "htm";

const html = htm.bind(h);
const W = 320;
const H = 110;
const PAD = 24;

const COLOUR = { Successful: "#2e7d32", Failed: "#c62828", Error: "#ef6c00", Inconclusive: "#f9a825" };

export function Chart({ metric }) {
  const points = metric.points.filter((p) => p.value !== null && p.at !== null);
  const values = points.map((p) => p.value).concat(metric.thresholds.map((t) => t.value));
  const times = points.map((p) => p.at);
  if (!points.length) {
    return html`<figure class="chart" data-testid=${`chart-${metric.name}`}>
      <figcaption>${metric.name} <span class="muted">no numeric measurements yet</span></figcaption></figure>`;
  }
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const x = (t) => PAD + (t1 === t0 ? (W - 2 * PAD) / 2 : ((t - t0) / (t1 - t0)) * (W - 2 * PAD));
  const y = (v) => H - PAD + 8 - ((v - lo) / (hi - lo)) * (H - PAD - 8 - 8);
  const line = points.map((p) => `${x(p.at).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ");
  return html`<figure class="chart" data-testid=${`chart-${metric.name}`}>
    <figcaption>${metric.name} <span class="muted">${metric.phase}</span></figcaption>
    <svg viewBox=${`0 0 ${W} ${H}`} width=${W} height=${H} role="img" aria-label=${`${metric.name} measurements`}>
      <line x1=${PAD} y1=${H - PAD + 8} x2=${W - PAD} y2=${H - PAD + 8} class="axis" />
      ${metric.thresholds.map(
        (t) => html`<g class=${`threshold ${t.kind}`}>
          <line x1=${PAD} x2=${W - PAD} y1=${y(t.value)} y2=${y(t.value)} />
          <text x=${W - PAD} y=${y(t.value) - 3} text-anchor="end">${t.kind}: result ${t.op} ${t.value}</text>
        </g>`,
      )}
      <polyline points=${line} class="series" />
      ${points.map(
        (p) => html`<circle cx=${x(p.at)} cy=${y(p.value)} r="3" fill=${COLOUR[p.phase] || "#607d8b"}>
          <title>${p.text} (${p.phase})</title></circle>`,
      )}
      <text x="2" y=${y(hi) + 4} class="tick">${+hi.toFixed(3)}</text>
      <text x="2" y=${y(lo) + 4} class="tick">${+lo.toFixed(3)}</text>
    </svg>
  </figure>`;
}
