import { html, Page } from '../ui.js';
export function Family() { return html`<${Page} title="Family"><p>Coming soon.</p><//>`; }
