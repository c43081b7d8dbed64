import { html, Page } from '../ui.js';
export function Imports() { return html`<${Page} title="Imports"><p>Coming soon.</p><//>`; }
