import { html, Page } from '../ui.js';
export function Broker() { return html`<${Page} title="Broker"><p>Coming soon.</p><//>`; }
