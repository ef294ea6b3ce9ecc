// Sign-in: OpenID Connect authorization code with PKCE (S256) against the configured issuer
// (Keycloak, or the server's built-in dev issuer). The access token lives in sessionStorage
// for this tab only and is sent as `Authorization: Bearer` to the API.

const SESSION = 'callfunnel.session';
const PENDING = 'callfunnel.pending';
let session = null;

const b64url = bytes => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const random = n => b64url(crypto.getRandomValues(new Uint8Array(n)));
const redirectUri = () => `${location.origin}/console/`;

async function discover() {
  const cfg = await (await fetch('/console/config.json')).json();
  const d = await (await fetch(`${cfg.issuer}/.well-known/openid-configuration`)).json();
  if (!d.authorization_endpoint || !d.token_endpoint) throw new Error(`the issuer ${cfg.issuer} offers no browser sign-in`);
  return { ...cfg, authorization_endpoint: d.authorization_endpoint, token_endpoint: d.token_endpoint };
}

function claims(jwt) {
  const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
  return JSON.parse(decodeURIComponent(escape(atob(part))));
}

export async function signIn() {
  const cfg = await discover();
  const verifier = random(32);
  const challenge = b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
  const state = random(16), nonce = random(16);
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, nonce, back: location.hash || '#/calls' }));
  const q = new URLSearchParams({ response_type: 'code', client_id: cfg.client_id, redirect_uri: redirectUri(), scope: cfg.scope,
    code_challenge: challenge, code_challenge_method: 'S256', state, nonce });
  location.assign(`${cfg.authorization_endpoint}?${q}`);
  return new Promise(() => {}); // the page is leaving
}

async function finishSignIn(params) {
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  sessionStorage.removeItem(PENDING);
  if (params.get('error')) throw new Error(`sign-in failed: ${params.get('error_description') || params.get('error')}`);
  if (!pending || pending.state !== params.get('state')) throw new Error('sign-in failed: the answer does not match the request (state); sign in again');
  const cfg = await discover();
  const r = await fetch(cfg.token_endpoint, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: params.get('code'), redirect_uri: redirectUri(), client_id: cfg.client_id, code_verifier: pending.verifier }) });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`sign-in failed: ${body.error_description || body.error || r.status}`);
  if (body.id_token && claims(body.id_token).nonce !== pending.nonce) throw new Error('sign-in failed: the ID token is not for this request (nonce)');
  const c = claims(body.access_token);
  session = { token: body.access_token, exp: c.exp * 1000, user: c.preferred_username || c.sub, tenant: c.tenant_id || null, roles: (c.realm_access && c.realm_access.roles) || [] };
  sessionStorage.setItem(SESSION, JSON.stringify(session));
  history.replaceState(null, '', `/console/${pending.back}`);
}

// Resolves with the session, signing in first when there is none (or it expired).
export async function start() {
  const params = new URLSearchParams(location.search);
  if (params.has('code') || params.has('error')) await finishSignIn(params);
  session = session || JSON.parse(sessionStorage.getItem(SESSION) || 'null');
  if (!session || session.exp < Date.now() + 30000) return signIn();
  setTimeout(() => { sessionStorage.removeItem(SESSION); signIn(); }, Math.max(0, session.exp - Date.now() - 30000));
  return session;
}

export function token() { return session && session.token; }
export function user() { return session; }
export function can(role) {
  const order = ['viewer', 'editor', 'tenant-admin', 'platform-admin'];
  const have = Math.max(...session.roles.map(r => order.indexOf(r)));
  return have >= order.indexOf(role);
}

export function signOut() {
  sessionStorage.removeItem(SESSION);
  session = null;
  location.assign('/console/');
}
