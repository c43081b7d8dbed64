import { html, Page } from '../ui.js';
export function Positions() { return html`<${Page} title="Positions"><p>Coming soon.</p><//>`; }
