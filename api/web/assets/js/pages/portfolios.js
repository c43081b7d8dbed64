import { html, Page } from '../ui.js';
export function Portfolios() { return html`<${Page} title="Portfolios"><p>Coming soon.</p><//>`; }
export function PortfolioDashboard() { return html`<${Page} title="PortfolioDashboard"><p>Coming soon.</p><//>`; }
