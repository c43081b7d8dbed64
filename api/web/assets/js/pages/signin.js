import { html, useState } from '../ui.js';
import * as api from '../api.js';

export function SignIn({ onSignedIn, query }) {
  const [mode, setMode] = useState('code');
  const [email, setEmail] = useState(query.get('email') || '');
  const [sent, setSent] = useState(false);
  const [otp, setOtp] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState(null);
  const [info, setInfo] = useState(null);
  const [busy, setBusy] = useState(false);

  const run = async (fn) => {
    setBusy(true); setError(null);
    try { await fn(); } catch (e) { setError(e.message); } finally { setBusy(false); }
  };
  const sendCode = (e) => {
    e.preventDefault();
    run(async () => {
      const r = await api.post('/api/auth/magic-link', { email });
      setSent(true);
      setInfo(r.detail || 'Check your email for a sign-in link and code.');
    });
  };
  const verify = (e) => {
    e.preventDefault();
    run(async () => onSignedIn(await api.post('/api/auth/verify-link', { email, otp: otp.trim() }, { quiet401: true })));
  };
  const login = (e) => {
    e.preventDefault();
    run(async () => onSignedIn(await api.post('/api/auth/password-login', { email, password }, { quiet401: true })));
  };

  return html`<section class="page signin">
    <h1 id="page-title" tabindex="-1">Sign in to TraderTape</h1>
    <div class="tabs" role="tablist" aria-label="Sign-in method">
      <button type="button" role="tab" aria-selected=${mode === 'code'} onClick=${() => { setMode('code'); setError(null); }}>Email code or link</button>
      <button type="button" role="tab" aria-selected=${mode === 'password'} onClick=${() => { setMode('password'); setError(null); }}>Password</button>
    </div>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
    ${mode === 'code' ? html`
      <form onSubmit=${sendCode} class="stack" aria-label="Email me a sign-in code">
        <label for="si-email">Email</label>
        <input id="si-email" name="email" type="email" autocomplete="email" required value=${email}
          onInput=${(e) => setEmail(e.target.value)} />
        <button type="submit" class=${sent ? '' : 'primary'} disabled=${busy}>${sent ? 'Send again' : 'Email me a code'}</button>
      </form>
      ${sent ? html`<p class="info" role="status">${info} Open the link in the email, or type the 6-digit code here.</p>
      <form onSubmit=${verify} class="stack" aria-label="Enter the code">
        <label for="si-otp">6-digit code</label>
        <input id="si-otp" name="otp" type="text" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}"
          maxlength="6" required value=${otp} onInput=${(e) => setOtp(e.target.value)} />
        <button type="submit" class="primary" disabled=${busy}>Sign in</button>
      </form>` : null}` : html`
      <form onSubmit=${login} class="stack" aria-label="Sign in with a password">
        <label for="si-user">Email</label>
        <input id="si-user" name="username" type="email" autocomplete="username" required value=${email}
          onInput=${(e) => setEmail(e.target.value)} />
        <label for="si-password">Password</label>
        <input id="si-password" name="password" type="password" autocomplete="current-password" required
          value=${password} onInput=${(e) => setPassword(e.target.value)} />
        <button type="submit" class="primary" disabled=${busy}>Sign in</button>
      </form>`}
    <p class="muted small">No password yet? Sign in with an emailed code, then set one under Broker → Account.</p>
  </section>`;
}
