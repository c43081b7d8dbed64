// Loaded by index.html as an async module beside main.js: starts the current page's first requests (and the
// session check) while the rest of the app is still being fetched and compiled. See loads.js.
import { prime } from './loads.js';

prime(location.pathname);
