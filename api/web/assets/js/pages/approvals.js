import { html, Page } from '../ui.js';
export function Approvals() { return html`<${Page} title="Approvals"><p>Coming soon.</p><//>`; }
