import { html, Page } from '../ui.js';
export function Audit() { return html`<${Page} title="Audit"><p>Coming soon.</p><//>`; }
