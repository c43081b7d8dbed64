import { html, Page } from '../ui.js';
export function Risk() { return html`<${Page} title="Risk"><p>Coming soon.</p><//>`; }
