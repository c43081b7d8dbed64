// Chart wrappers around TradingView lightweight-charts (vendored, Apache-2.0).
import { html, useEffect, useRef } from '../vendor/htm-preact-standalone.module.js';
import { number } from './format.js';

// The library (178 KB) is loaded when the first chart mounts, not with the app: pages without a chart (Home,
// Approvals, Positions...) never parse it, and a page with one shows its tables while it loads.
let library = null;
export function loadChartLibrary() {
  library = library || import('../vendor/lightweight-charts.standalone.production.mjs');
  return library;
}

const whenIdle = (fn) => (window.requestIdleCallback ? requestIdleCallback(fn, { timeout: 400 }) : setTimeout(fn, 1));

function themeColors() {
  const css = getComputedStyle(document.documentElement);
  return {
    text: css.getPropertyValue('--fg').trim() || '#222',
    grid: css.getPropertyValue('--grid').trim() || '#eee',
    up: css.getPropertyValue('--up').trim() || '#0a7d38',
    down: css.getPropertyValue('--down').trim() || '#c62828',
    accent: css.getPropertyValue('--accent').trim() || '#2962ff',
    muted: css.getPropertyValue('--muted').trim() || '#888',
  };
}

function baseOptions(height) {
  const c = themeColors();
  return {
    height,
    autoSize: true,
    layout: { background: { color: 'transparent' }, textColor: c.text, fontFamily: 'inherit' },
    grid: { vertLines: { color: c.grid }, horzLines: { color: c.grid } },
    // entireTextOnly: a label the pane's edge would cut (the lowest one, "8,00,000" losing its commas' tails) is
    // not drawn rather than drawn clipped
    rightPriceScale: { borderVisible: false, entireTextOnly: true },
    timeScale: { borderVisible: false },
    localization: { locale: 'en-IN', priceFormatter: (p) => number(p, Math.abs(p) >= 1000 ? 0 : 2) },
  };
}

/**
 * A chart: `series` = [{kind: 'line'|'area'|'candles'|'histogram', data, options, markers}].
 * `label` names it for screen readers.
 */
/**
 * What a chart shows, cheaply: each series' kind, options, length, first and last points, markers, and the
 * theme. Parents rebuild their `series` arrays on every render; the chart is redrawn only when this changes.
 */
function signature(series, height) {
  return JSON.stringify([height, document.documentElement.dataset.theme, series.map((s) => [s.kind, s.options,
    s.data.length, s.data[0], s.data[s.data.length - 1], s.markers ? s.markers.length : 0])]);
}

export function Chart({ series, height = 280, label, id }) {
  const ref = useRef(null);
  const sig = signature(series, height);
  useEffect(() => {
    if (!ref.current) return undefined;
    let chart = null;
    let gone = false;
    // drawn when the browser is idle: the tables around it are painted (and usable) first
    whenIdle(() => loadChartLibrary().then((lib) => {
      if (gone || !ref.current) return;
      chart = draw(lib, ref.current, series, height);
    }));
    return () => { gone = true; if (chart) chart.remove(); };
  }, [sig]);
  return html`<figure class="chart" id=${id}><div ref=${ref} class="chart-box" style=${`height:${height}px`}
    role="img" aria-label=${label}></div><figcaption class="muted">${label}</figcaption></figure>`;
}

/** A line that never moves (a new portfolio's equity) gets a range of ±1 % around its value: on a range of
 * zero the axis labels every tick with the same number ("10,00,000" three times). */
function flat(s) {
  if (s.kind !== 'line' && s.kind !== 'area') return {};
  const values = s.data.map((d) => d.value).filter((v) => Number.isFinite(v));
  if (!values.length || values.some((v) => v !== values[0])) return {};
  const v = values[0];
  const pad = Math.abs(v) * 0.01 || 1;
  return { autoscaleInfoProvider: () => ({ priceRange: { minValue: v - pad, maxValue: v + pad } }) };
}

function draw(lib, box, series, height) {
  const { createChart, LineSeries, AreaSeries, CandlestickSeries, HistogramSeries, createSeriesMarkers } = lib;
  const c = themeColors();
  const chart = createChart(box, baseOptions(height));
  for (const s of series) {
    const type = { line: LineSeries, area: AreaSeries, candles: CandlestickSeries, histogram: HistogramSeries }[s.kind];
    const defaults = s.kind === 'line' ? { color: c.accent, lineWidth: 2 }
      : s.kind === 'area' ? { lineColor: c.down, topColor: 'rgba(198,40,40,0.05)', bottomColor: 'rgba(198,40,40,0.35)' }
        : s.kind === 'candles' ? { upColor: c.up, downColor: c.down, wickUpColor: c.up, wickDownColor: c.down,
          borderVisible: false } : {};
    const ser = chart.addSeries(type, { ...defaults, ...flat(s), ...(s.options || {}) });
    ser.setData(s.data);
    if (s.markers && s.markers.length) createSeriesMarkers(ser, s.markers);
  }
  chart.timeScale().fitContent();
  box.dataset.ready = '1';
  return chart;
}
