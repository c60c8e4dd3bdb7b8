// Charts drawn as SVG (createElementNS) from the `visualization` spec:
// `{type: bar|line|pie|scatter, x, y, data: {labels: [...], datasets: [{label, data: [...]}]}}`.
// Scatter datasets may hold `{x, y}` points instead of values per label. Colours come from CSS classes.

import { svg, h } from './dom.js';

const W = 640;
const H = 320;
const PAD = { top: 16, right: 16, bottom: 56, left: 56 };
const SERIES = 8;

const num = (v) => (typeof v === 'number' ? v : v === null || v === undefined || v === '' ? NaN : Number(v));
const short = (text, max = 14) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
const label = (v) => (v === null || v === undefined ? 'NULL' : typeof v === 'object' ? JSON.stringify(v) : String(v));

function niceTicks(min, max, count = 5) {
  if (!(max > min)) {
    max = min + 1;
  }
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
  const start = Math.floor(min / step) * step;
  const ticks = [];
  for (let v = start; v <= max + step * 0.5; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function formatTick(v) {
  const abs = Math.abs(v);
  if (abs >= 1e9) return `${(v / 1e9).toPrecision(3)}G`;
  if (abs >= 1e6) return `${(v / 1e6).toPrecision(3)}M`;
  if (abs >= 1e4) return `${(v / 1e3).toPrecision(3)}k`;
  return String(Number(v.toPrecision(6)));
}

function frame(title) {
  return svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title },
    svg('title', null, title));
}

function yAxis(root, ticks, scaleY) {
  for (const tick of ticks) {
    const y = scaleY(tick);
    root.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: 'grid' }),
      svg('text', { x: PAD.left - 6, y: y + 4, 'text-anchor': 'end', class: 'tick' }, formatTick(tick)));
  }
}

function xLabels(root, labels, xOf) {
  const every = Math.ceil(labels.length / 12);
  labels.forEach((text, i) => {
    if (i % every !== 0) return;
    const x = xOf(i);
    root.append(svg('text', { x, y: H - PAD.bottom + 16, 'text-anchor': 'end', class: 'tick',
      transform: `rotate(-30 ${x} ${H - PAD.bottom + 16})` }, short(label(text))));
  });
}

function bars(spec, datasets, labels) {
  const root = frame(spec.title || spec.y?.join?.(', ') || 'bar chart');
  const values = datasets.flatMap((d) => d.data.map(num)).filter(Number.isFinite);
  const ticks = niceTicks(Math.min(0, ...values), Math.max(0, ...values));
  const [lo, hi] = [ticks[0], ticks[ticks.length - 1]];
  const plotH = H - PAD.top - PAD.bottom;
  const scaleY = (v) => PAD.top + plotH - ((v - lo) / (hi - lo)) * plotH;
  yAxis(root, ticks, scaleY);
  const band = (W - PAD.left - PAD.right) / Math.max(1, labels.length);
  const barW = (band * 0.8) / Math.max(1, datasets.length);
  datasets.forEach((dataset, s) => {
    dataset.data.forEach((value, i) => {
      const v = num(value);
      if (!Number.isFinite(v)) return;
      const x = PAD.left + i * band + band * 0.1 + s * barW;
      const y = Math.min(scaleY(v), scaleY(0));
      const rect = svg('rect', { x, y, width: Math.max(1, barW - 1), height: Math.max(1, Math.abs(scaleY(v) - scaleY(0))),
        class: `series-${s % SERIES}` }, svg('title', null, `${label(labels[i])} · ${dataset.label}: ${label(value)}`));
      root.append(rect);
    });
  });
  xLabels(root, labels, (i) => PAD.left + i * band + band / 2);
  return root;
}

function lines(spec, datasets, labels) {
  const root = frame(spec.title || spec.y?.join?.(', ') || 'line chart');
  const values = datasets.flatMap((d) => d.data.map(num)).filter(Number.isFinite);
  const ticks = niceTicks(Math.min(...values), Math.max(...values));
  const [lo, hi] = [ticks[0], ticks[ticks.length - 1]];
  const plotH = H - PAD.top - PAD.bottom;
  const scaleY = (v) => PAD.top + plotH - ((v - lo) / (hi - lo)) * plotH;
  const step = (W - PAD.left - PAD.right) / Math.max(1, labels.length - 1);
  const xOf = (i) => PAD.left + (labels.length === 1 ? (W - PAD.left - PAD.right) / 2 : i * step);
  yAxis(root, ticks, scaleY);
  datasets.forEach((dataset, s) => {
    const points = dataset.data.map((value, i) => [xOf(i), num(value), value, i]).filter(([, v]) => Number.isFinite(v));
    root.append(svg('polyline', { points: points.map(([x, v]) => `${x},${scaleY(v)}`).join(' '),
      class: `line series-${s % SERIES}` }));
    for (const [x, v, raw, i] of points) {
      root.append(svg('circle', { cx: x, cy: scaleY(v), r: 3, class: `series-${s % SERIES}` },
        svg('title', null, `${label(labels[i])} · ${dataset.label}: ${label(raw)}`)));
    }
  });
  xLabels(root, labels, xOf);
  return root;
}

function scatter(spec, datasets, labels) {
  const root = frame(spec.title || 'scatter chart');
  const series = datasets.map((dataset) => dataset.data.map((point, i) => (point && typeof point === 'object'
    ? [num(point.x), num(point.y)] : [num(labels[i]), num(point)])).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  const xs = series.flat().map(([x]) => x);
  const ys = series.flat().map(([, y]) => y);
  const xTicks = niceTicks(Math.min(...xs), Math.max(...xs));
  const yTicks = niceTicks(Math.min(...ys), Math.max(...ys));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const scaleX = (v) => PAD.left + ((v - xTicks[0]) / (xTicks[xTicks.length - 1] - xTicks[0])) * plotW;
  const scaleY = (v) => PAD.top + plotH - ((v - yTicks[0]) / (yTicks[yTicks.length - 1] - yTicks[0])) * plotH;
  yAxis(root, yTicks, scaleY);
  for (const tick of xTicks) {
    root.append(svg('text', { x: scaleX(tick), y: H - PAD.bottom + 16, 'text-anchor': 'middle', class: 'tick' }, formatTick(tick)));
  }
  series.forEach((points, s) => {
    for (const [x, y] of points) {
      root.append(svg('circle', { cx: scaleX(x), cy: scaleY(y), r: 4, class: `dot series-${s % SERIES}` },
        svg('title', null, `${datasets[s].label}: (${x}, ${y})`)));
    }
  });
  return root;
}

function pie(spec, datasets, labels) {
  const root = frame(spec.title || datasets[0].label || 'pie chart');
  const values = datasets[0].data.map(num).map((v) => (Number.isFinite(v) && v > 0 ? v : 0));
  const total = values.reduce((a, b) => a + b, 0) || 1;
  const [cx, cy, r] = [H / 2, H / 2, H / 2 - 16];
  let angle = -Math.PI / 2;
  values.forEach((v, i) => {
    const sweep = (v / total) * Math.PI * 2;
    const title = svg('title', null, `${label(labels[i])}: ${label(datasets[0].data[i])}`);
    if (sweep >= Math.PI * 2 - 1e-9) {
      root.append(svg('circle', { cx, cy, r, class: `slice series-${i % SERIES}` }, title));
    } else if (sweep > 0) {
      const [x1, y1] = [cx + r * Math.cos(angle), cy + r * Math.sin(angle)];
      const [x2, y2] = [cx + r * Math.cos(angle + sweep), cy + r * Math.sin(angle + sweep)];
      const d = `M ${cx} ${cy} L ${x1} ${y1} A ${r} ${r} 0 ${sweep > Math.PI ? 1 : 0} 1 ${x2} ${y2} Z`;
      root.append(svg('path', { d, class: `slice series-${i % SERIES}` }, title));
    }
    angle += sweep;
  });
  labels.forEach((text, i) => {
    const y = 24 + i * 22;
    root.append(svg('rect', { x: H + 24, y: y - 11, width: 14, height: 14, class: `series-${i % SERIES}` }),
      svg('text', { x: H + 46, y, class: 'legend' }, `${short(label(text), 28)} (${((values[i] / total) * 100).toFixed(1)}%)`));
  });
  return root;
}

/** The chart of `spec` in a <figure>, or null when the spec cannot be drawn. */
export function renderChart(spec) {
  if (!spec || typeof spec !== 'object') return null;
  const data = spec.data || {};
  const datasets = (Array.isArray(data.datasets) ? data.datasets : [])
    .filter((d) => d && Array.isArray(d.data))
    .map((d) => ({ label: label(d.label ?? ''), data: d.data }));
  const labels = Array.isArray(data.labels) ? data.labels : datasets[0] ? datasets[0].data.map((_, i) => i + 1) : [];
  if (datasets.length === 0 || (labels.length === 0 && spec.type !== 'scatter')) return null;
  const draw = { bar: bars, line: lines, pie, scatter }[spec.type] || bars;
  let chart;
  try {
    chart = draw(spec, datasets, labels);
  } catch {
    return null;
  }
  const legend = spec.type === 'pie' || datasets.length < 2 ? null : h('ul', { class: 'chart-legend' },
    datasets.map((d, s) => h('li', { class: `legend-${s % SERIES}` }, d.label)));
  const figure = h('figure', { class: 'chart-figure', dataset: { chart: String(spec.type || 'bar') } }, legend);
  figure.prepend(chart);
  return figure;
}
