import { html, Page } from '../ui.js';
export function Market() { return html`<${Page} title="Market"><p>Coming soon.</p><//>`; }
