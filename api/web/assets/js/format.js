// Indian number, money and time formatting. Pure functions, no DOM: tested in tests/browser/test_format.py.

const IST = 'Asia/Kolkata';
const MINUS = '\u2212';

/** Groups the integer digits the Indian way: last three, then pairs (1,30,13,928). */
export function groupIndian(digits) {
  if (digits.length <= 3) return digits;
  const last3 = digits.slice(-3);
  let rest = digits.slice(0, -3);
  const parts = [];
  while (rest.length > 2) {
    parts.unshift(rest.slice(-2));
    rest = rest.slice(0, -2);
  }
  if (rest) parts.unshift(rest);
  return parts.join(',') + ',' + last3;
}

/** Rounds half away from zero on the decimal digits as written (67372.355 -> 67372.36, unlike toFixed). */
export function roundHalfUp(x, decimals) {
  if (Math.abs(x) >= 1e15 || String(x).includes('e')) return x;
  const shifted = Number(`${x}e${decimals}`);
  return Number(`${Math.round(shifted)}e-${decimals}`);
}

/** 13013928.666 -> "1,30,13,928.67"; decimals fixed; negative with a true minus sign. */
export function number(value, decimals = 2) {
  if (value === null || value === undefined || value === '' || !Number.isFinite(Number(value))) return '—';
  const n = Number(value);
  const fixed = roundHalfUp(Math.abs(n), decimals).toFixed(decimals);
  const [int, frac] = fixed.split('.');
  const negative = n < 0 && Number(fixed) !== 0;
  return (negative ? MINUS : '') + groupIndian(int) + (frac ? '.' + frac : '');
}

/** ₹ amount: inr(-67372.355) -> "−₹67,372.36" (the sign before the symbol). */
export function inr(value, decimals = 2) {
  const s = number(value, decimals);
  if (s === '—') return s;
  return s.startsWith(MINUS) ? MINUS + '₹' + s.slice(1) : '₹' + s;
}

/** Signed ₹ amount for P&L: "+₹1,200.00", "−₹5.00", "₹0.00". */
export function pnl(value, decimals = 2) {
  const s = inr(value, decimals);
  if (s === '—' || s.startsWith(MINUS)) return s;
  return Number(Math.abs(Number(value)).toFixed(decimals)) === 0 ? s : '+' + s;
}

/** Short money for cards: ₹1.30 Cr, ₹4.5 L, ₹12,500. */
export function inrShort(value) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return '—';
  const n = Number(value);
  const a = Math.abs(n);
  const sign = n < 0 ? MINUS : '';
  if (a >= 1e7) return `${sign}₹${(a / 1e7).toFixed(2)} Cr`;
  if (a >= 1e5) return `${sign}₹${(a / 1e5).toFixed(2)} L`;
  return inr(n, 0);
}

/** Percent: pct(23.456) -> "23.46 %"; signed=true adds "+". */
export function pct(value, decimals = 2, signed = false) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return '—';
  const s = number(value, decimals);
  const plus = signed && Number(value) > 0 && Number(Number(value).toFixed(decimals)) !== 0;
  return (plus ? '+' : '') + s + ' %';
}

/** A price: two decimals (ticks of 0.05), Indian grouping, no symbol. */
export function price(value) {
  return number(value, 2);
}

// Building an Intl.DateTimeFormat costs far more than formatting with one: one per set of options, kept.
const formatters = new Map();
function parts(date, options) {
  const key = JSON.stringify(options);
  let fmt = formatters.get(key);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-IN', { timeZone: IST, ...options });
    formatters.set(key, fmt);
  }
  const out = {};
  for (const p of fmt.formatToParts(date)) {
    out[p.type] = p.value;
  }
  return out;
}

function toDate(value) {
  if (value instanceof Date) return value;
  if (typeof value === 'number') return new Date(value);
  return new Date(String(value));
}

/** A timestamp in IST: "03 Aug 2026, 15:30 IST". */
export function dateTime(value) {
  if (!value) return '—';
  const d = toDate(value);
  if (Number.isNaN(d.getTime())) return '—';
  const p = parts(d, { day: '2-digit', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit',
    hourCycle: 'h23' });
  return `${p.day} ${p.month} ${p.year}, ${p.hour}:${p.minute} IST`;
}

/** A timestamp in IST to the second: "03 Aug 2026, 15:30:05 IST" (audit trails). */
export function dateTimeSeconds(value) {
  if (!value) return '—';
  const d = toDate(value);
  if (Number.isNaN(d.getTime())) return '—';
  return `${dateTime(d).slice(0, -11)}, ${timeIST(d)} IST`;
}

/** A time of day in IST: "15:30:05". */
export function timeIST(value) {
  const d = toDate(value);
  if (Number.isNaN(d.getTime())) return '—';
  const p = parts(d, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  return `${p.hour}:${p.minute}:${p.second}`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** A calendar date "2026-08-03" -> "03 Aug 2026" (no time-zone shift: it is already an NSE day). */
export function day(value) {
  if (!value) return '—';
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(String(value));
  if (!m) return String(value);
  return `${m[3]} ${MONTHS[Number(m[2]) - 1]} ${m[1]}`;
}

/** Today's date in IST as YYYY-MM-DD. */
export function todayIST(now = new Date()) {
  const p = parts(now, { year: 'numeric', month: '2-digit', day: '2-digit' });
  return `${p.year}-${p.month}-${p.day}`;
}

/** Time left until `value`: "2 d 3 h", "45 min", "expired". */
export function countdown(value, now = Date.now()) {
  const ms = toDate(value).getTime() - now;
  if (!Number.isFinite(ms)) return '—';
  if (ms <= 0) return 'expired';
  const min = Math.floor(ms / 60000);
  if (min < 60) return `${Math.max(min, 1)} min`;
  const h = Math.floor(min / 60);
  if (h < 24) return `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** CSS class for a signed amount. */
export function tone(value) {
  const n = Number(value);
  if (!Number.isFinite(n) || n === 0) return '';
  return n > 0 ? 'up' : 'down';
}

/** A code as words: "stop_loss" -> "stop loss" (exit reasons and the like); "—" for none. */
export function words(code) {
  return code === null || code === undefined || code === '' ? '—' : String(code).replaceAll('_', ' ');
}

// The app's codes in words: what a trader reads instead of nifty_100, v3_dip_buyer, crosses_above or bb_upper.
const UNIVERSES = { nifty_50: 'NIFTY 50', nifty_100: 'NIFTY 100' };

/** A backtest's universe: "nifty_100" -> "NIFTY 100"; a custom list of symbols -> "3 symbols". */
export function universe(name, symbols = null) {
  if (name) return UNIVERSES[name] || String(name).replaceAll('_', ' ').toUpperCase();
  if (Array.isArray(symbols)) return `${number(symbols.length, 0)} ${symbols.length === 1 ? 'symbol' : 'symbols'}`;
  return 'custom symbols';
}

// the base models' titles as GET /api/strategies/base-models gives them (domain/base_models.py)
const BASE_MODELS = { v3_dip_buyer: 'Dip buyer (v3)', momentum_breakout: 'Momentum breakout', sma_crossover: 'SMA crossover',
  bollinger_reversion: 'Bollinger reversion' };

/** A base model: "v3_dip_buyer" -> "Dip buyer (v3)"; an unknown one in words, capitalised. */
export function baseModel(code) {
  if (!code) return '—';
  if (BASE_MODELS[code]) return BASE_MODELS[code];
  const w = words(code);
  return w.charAt(0).toUpperCase() + w.slice(1);
}

const INDICATORS = { sma: 'SMA', ema: 'EMA', rsi: 'RSI', atr: 'ATR', roc: 'rate of change', bb_upper: 'Bollinger upper band',
  bb_lower: 'Bollinger lower band', avg_volume: 'average volume' };

/** A rule operand's indicator: "bb_upper" -> "Bollinger upper band", "rsi" -> "RSI", "close" -> "close". */
export function indicator(code) {
  return INDICATORS[code] || words(code);
}

/** A rule's operator: "crosses_above" -> "crosses above"; "<" stays "<". */
export function operator(code) {
  return words(code);
}

const CHOICES = { next_open: 'Next open (market order)', limit: 'Limit (GTT below the close)' };

/** A parameter's option: "next_open" -> "Next open (market order)"; an unknown one in words. */
export function choice(code) {
  return CHOICES[code] || words(code);
}
