// The app shell: session, routing (History API), navigation, theme.
import { html, render, useState, useEffect, useRef } from '../vendor/htm-preact-standalone.module.js';
import * as api from './api.js';
import { load, forgetPrimed } from './loads.js';
import { DialogHost, ToastHost, setNavigate, toast } from './ui.js';
import { SignIn } from './pages/signin.js';
import { Home } from './pages/home.js';
import { Strategies, StrategyEdit } from './pages/strategies.js';
import { Backtests, BacktestResult, BacktestCompare } from './pages/backtests.js';
import { Portfolios, PortfolioDashboard } from './pages/portfolios.js';
import { Approvals } from './pages/approvals.js';
import { Positions } from './pages/positions.js';
import { Risk } from './pages/risk.js';
import { Market } from './pages/market.js';
import { Broker } from './pages/broker.js';
import { Imports } from './pages/imports.js';
import { Family } from './pages/family.js';
import { Audit } from './pages/audit.js';
import { Research, ResearchJob } from './pages/research.js';
import { NotificationBell, Notifications, NotificationSettings } from './pages/notifications.js';
import { Settings } from './pages/settings.js';

const NAV = [
  ['/', 'Home'], ['/strategies', 'Strategies'], ['/backtests', 'Backtests'], ['/research', 'Research'],
  ['/portfolios', 'Portfolios'],
  ['/approvals', 'Approvals'], ['/positions', 'Positions'], ['/risk', 'Risk'], ['/market', 'Market'],
  ['/broker', 'Broker'], ['/imports', 'Imports'], ['/family', 'Family'], ['/audit', 'Audit'], ['/settings', 'Settings'],
];

const ROUTES = [
  [/^\/$/, Home],
  [/^\/strategies$/, Strategies],
  [/^\/strategies\/(new|\d+)$/, StrategyEdit],
  [/^\/backtests$/, Backtests],
  [/^\/backtests\/compare$/, BacktestCompare],
  [/^\/backtests\/(\d+)$/, BacktestResult],
  [/^\/research$/, Research],
  [/^\/research\/(sweeps|walk-forward|monte-carlo|lookahead)\/(\d+)$/, ResearchJob],
  [/^\/portfolios$/, Portfolios],
  [/^\/portfolios\/(\d+)$/, PortfolioDashboard],
  [/^\/approvals$/, Approvals],
  [/^\/positions$/, Positions],
  [/^\/risk$/, Risk],
  [/^\/market$/, Market],
  [/^\/broker$/, Broker],
  [/^\/imports$/, Imports],
  [/^\/family$/, Family],
  [/^\/audit$/, Audit],
  [/^\/notifications$/, Notifications],
  [/^\/settings\/notifications$/, NotificationSettings],
  [/^\/settings$/, Settings],
];

// Pages that may render (and start their requests) while the session check is still in flight: they do
// not read `me`. A signed-out visitor's first 401 sends them to sign-in like the check would. Others wait.
const EARLY = new Set([Home, Backtests, BacktestResult, BacktestCompare, Portfolios, PortfolioDashboard, Approvals,
  Positions, Risk, Market, Imports, Audit]);

function currentLocation() {
  return { path: location.pathname, query: new URLSearchParams(location.search) };
}

const THEME_KEY = 'tt-theme';
function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
}
applyTheme(localStorage.getItem(THEME_KEY)
  || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));

/** The guides (docs/*.md, served read-only under /help), listed when the menu is first opened. */
function HelpMenu() {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  const load = (e) => {
    if (!e.currentTarget.open || items) return;
    api.get('/help/guides.json').then(setItems, setError);
  };
  return html`<details class="help-menu" onToggle=${load}><summary>Help</summary>
    <ul>${error ? html`<li class="error">${error.message}</li>` : !items ? html`<li class="muted">Loading…</li>`
      : items.map((g) => html`<li><a href=${g.href}>${g.title}</a></li>`)}</ul></details>`;
}

function App() {
  const [loc, setLoc] = useState(currentLocation());
  const [me, setMe] = useState(undefined); // undefined: checking; null: signed out
  const [menuOpen, setMenuOpen] = useState(false);
  const signedInRef = useRef(false);

  const go = (to, replace = false) => {
    if (replace) history.replaceState(null, '', to); else history.pushState(null, '', to);
    setLoc(currentLocation());
    setMenuOpen(false);
    window.scrollTo(0, 0);
    requestAnimationFrame(() => document.getElementById('page-title')?.focus());
  };
  setNavigate(go);

  useEffect(() => {
    const onPop = () => setLoc(currentLocation());
    addEventListener('popstate', onPop);
    const onClick = (e) => {
      const a = e.target.closest && e.target.closest('a[href]');
      if (!a || a.target || a.hasAttribute('download') || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey) return;
      const url = new URL(a.href, location.href);
      if (url.hash && url.pathname === location.pathname && url.search === location.search) return; // in-page
      if (url.origin !== location.origin || /^\/(api|link|assets|metrics|help)(\/|$)/.test(url.pathname)) return;
      e.preventDefault();
      go(url.pathname + url.search);
    };
    document.addEventListener('click', onClick);
    api.setUnauthorizedHandler(() => {
      const ended = signedInRef.current; // a session we saw ended; a first-time visitor was never signed in
      setMe(null);
      const here = location.pathname + location.search;
      if (location.pathname !== '/signin') {
        if (ended) toast('Your session ended; sign in again to continue.', 'info');
        go(`/signin?next=${encodeURIComponent(here)}`, true);
      }
    });
    load('me').then((u) => { signedInRef.current = true; setMe(u); }).catch(() => {
      setMe(null);
      if (location.pathname !== '/signin') {
        go(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`, true);
      }
    });
    return () => { removeEventListener('popstate', onPop); document.removeEventListener('click', onClick); };
  }, []);

  const signedIn = (user) => {
    forgetPrimed(); // (a request started before signing in was answered 401)
    signedInRef.current = true;
    setMe(user);
    const next = loc.query.get('next');
    go(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', true);
  };
  const signOut = async () => {
    try { await api.post('/api/auth/logout'); } catch (_) { /* already out */ }
    signedInRef.current = false;
    forgetPrimed();
    setMe(null);
    go('/signin', true);
  };
  const toggleTheme = () => {
    const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    localStorage.setItem(THEME_KEY, next);
    applyTheme(next);
    setLoc({ ...loc }); // charts re-read the colours
  };

  let page;
  if (loc.path === '/signin' || me === null) {
    page = html`<${SignIn} onSignedIn=${signedIn} query=${loc.query} />`;
  } else {
    const hit = ROUTES.map(([re, C]) => [re.exec(loc.path), C]).find(([m]) => m);
    page = me === undefined && !(hit && EARLY.has(hit[1])) ? html`<p class="muted" aria-busy="true">Loading…</p>`
      : hit ? html`<${hit[1]} params=${hit[0].slice(1)} query=${loc.query} me=${me} key=${loc.path} />`
      : html`<section class="page"><h1 id="page-title" tabindex="-1">Not found</h1><p>No page at ${loc.path}.
        <a href="/">Home</a></p></section>`;
  }
  const active = (href) => (href === '/' ? loc.path === '/' : loc.path.startsWith(href));
  return html`
    <a class="skip" href="#main">Skip to content</a>
    <header class="topbar">
      <a class="brand" href="/">TraderTape</a>
      ${me ? html`<button type="button" class="menu-btn" aria-expanded=${menuOpen} aria-controls="nav"
        onClick=${() => setMenuOpen(!menuOpen)}>Menu</button>` : null}
      <div class="spacer"></div>
      <${HelpMenu} />
      <button type="button" class="theme-btn" onClick=${toggleTheme} aria-label="Toggle dark and light theme">◐</button>
      ${me ? html`<${NotificationBell} />` : null}
      ${me ? html`<span class="who muted" title=${me.email}>${me.email}</span>
        <button type="button" class="signout" onClick=${signOut}>Sign out</button>` : null}
    </header>
    <div class="layout">
      ${me ? html`<nav id="nav" class=${menuOpen ? 'open' : ''} aria-label="Main"><ul>${NAV.map(([href, label]) => html`
        <li><a href=${href} aria-current=${active(href) ? 'page' : undefined}>${label}</a></li>`)}
        <li class="phone-only"><button type="button" onClick=${signOut}>Sign out</button></li></ul></nav>` : null}
      <main id="main">${page}</main>
    </div>
    <${DialogHost} /><${ToastHost} />`;
}

render(html`<${App} />`, document.getElementById('app'));
