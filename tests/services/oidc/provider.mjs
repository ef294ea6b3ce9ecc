// A Keycloak-shaped OpenID Connect provider for the tests: the real panva/oidc-provider, mounted
// under /realms/voice with Keycloak's endpoint paths, issuing RS256 JWT access tokens through the
// client_credentials grant with the claims a Keycloak service account gets (azp, scope,
// realm_access.roles, preferred_username, plus our tenant_id mapper), and to people signing in to
// the web console (public client `callfunnel-console`, authorization code + PKCE, a username and
// password form at /realms/voice/login-actions/UID; consent is implied, as for a first-party
// Keycloak client). Users: USERS below.
//   PORT            listen port on 127.0.0.1 (default 8180)
//   REALM           realm name (default voice)
//   OIDC_KEY_FILE   where the RS256 signing keys are kept (generated when missing), so tokens stay
//                   verifiable across restarts; without it the keys live in memory only
// Admin (outside the realm, loopback only): POST /admin/rotate makes a new signing key with a new
// kid, lists it first in the JWKS (the previous keys stay listed) and signs new tokens with it.
// Started by scripts/services/oidc.sh; `oidc-provider` resolves from the package next to this
// file, or from NODE_PATH / OIDC_NODE_MODULES (ESM imports ignore NODE_PATH, hence the fallback).
import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

async function load(name) {
  try {
    return await import(name);
  } catch (e) {
    if (e.code !== 'ERR_MODULE_NOT_FOUND') throw e;
    const dirs = [process.env.OIDC_NODE_MODULES, ...(process.env.NODE_PATH || '').split(path.delimiter)]
      .filter(Boolean);
    for (const dir of dirs) {
      try {
        // a require rooted in the parent of node_modules finds the package's entry file
        const entry = createRequire(path.join(path.resolve(dir), '..', 'noop.js')).resolve(name);
        return await import(pathToFileURL(entry).href);
      } catch { /* next directory */ }
    }
    throw e;
  }
}
const { default: Provider } = await load('oidc-provider');

const port = Number(process.env.PORT || 8180);
const realm = process.env.REALM || 'voice';
const issuer = `http://127.0.0.1:${port}/realms/${realm}`;
const prefix = `/realms/${realm}`;
const keyFile = process.env.OIDC_KEY_FILE;
const RESOURCE = 'https://api.voice.local'; // default resource indicator; its audience is per client
const MAX_KEYS = 3; // the newest keys kept in the JWKS (and the key file) after rotations

// client_id / secret / tenant (null: no tenant_id claim) / realm roles / audience / access-token TTL
const CLIENTS = [
  ['svc-acme', 'acme-secret', 'acme', ['tenant-admin']],
  ['svc-acme-viewer', 'acme-viewer-secret', 'acme', ['viewer']],
  ['svc-acme-editor', 'acme-editor-secret', 'acme', ['editor']],
  ['svc-globex', 'globex-secret', 'globex', ['tenant-admin']],
  ['svc-platform', 'platform-secret', null, ['platform-admin']],
  ['svc-shortlived', 'shortlived-secret', 'acme', ['tenant-admin'], 'voice-api', 1],
  ['svc-otheraud', 'otheraud-secret', 'acme', ['tenant-admin'], 'other-api'],
].map(([id, secret, tenant, roles, audience = 'voice-api', ttl = 300]) => ({
  client_id: id,
  client_secret: secret,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic', // client_secret_post is accepted as well
  'urn:cf:tenant': tenant,
  'urn:cf:roles': roles,
  'urn:cf:audience': audience,
  'urn:cf:ttl': ttl,
}));
// The web console: a public client (no secret, PKCE), like a Keycloak client with "Client
// authentication" off. Native application type: its loopback redirect matches on any port
// (RFC 8252 7.3), so servers on test ports can use it; CORS is allowed from those origins.
CLIENTS.push({
  client_id: 'callfunnel-console',
  application_type: 'native',
  grant_types: ['authorization_code'],
  response_types: ['code'],
  redirect_uris: ['http://127.0.0.1/console/'],
  token_endpoint_auth_method: 'none',
  'urn:cf:tenant': null,
  'urn:cf:roles': [],
  'urn:cf:audience': 'voice-api',
  'urn:cf:ttl': 300,
});

// People who can sign in: username / password / tenant (the tenant_id user attribute) / realm roles.
const USERS = [
  ['alice', 'alice-password', 'acme', ['editor']],
  ['victor', 'victor-password', 'acme', ['viewer']],
  ['gina', 'gina-password', 'globex', ['tenant-admin']],
].map(([username, password, tenant, roles]) => ({ id: userId(username), username, password, tenant, roles }));
const userById = (id) => USERS.find((u) => u.id === id);

// Keycloak gives a service account a user with a UUID id (the token's sub) and the username
// service-account-<client id>; the UUID here is derived from the client id, so it is stable.
function serviceAccountId(clientId) {
  const h = createHash('sha256').update(`${realm}/${clientId}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

// A Keycloak user's id is a UUID; derived from the username here, so it is stable.
function userId(username) {
  const h = createHash('sha256').update(`${realm}/user/${username}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

// CORS for public clients: the origins of their redirect URIs, any port on loopback ones.
function corsAllowed(ctx, origin, client) {
  if (client.clientAuthMethod !== 'none') return false;
  const o = URL.parse(origin);
  return !!o && client.redirectUris.some((uri) => {
    const u = URL.parse(uri);
    return u && u.protocol === o.protocol && u.hostname === o.hostname && (u.port === o.port || u.hostname === '127.0.0.1');
  });
}

function newKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  // kid: the RFC 7638 thumbprint of the public key (unique per key, like Keycloak's kids)
  const kid = createHash('sha256').update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n }))
    .digest('base64url');
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
}

function saveKeys(keys) {
  if (!keyFile) return;
  writeFileSync(`${keyFile}.tmp`, `${JSON.stringify({ keys }, null, 1)}\n`, { mode: 0o600 });
  renameSync(`${keyFile}.tmp`, keyFile);
}

function loadKeys() {
  if (keyFile) {
    try {
      const { keys } = JSON.parse(readFileSync(keyFile, 'utf8'));
      if (Array.isArray(keys) && keys.length) return keys;
    } catch (e) {
      if (e.code !== 'ENOENT') console.error(`ignoring unreadable ${keyFile}: ${e.message}`);
    }
  }
  const keys = [newKey()];
  saveKeys(keys);
  return keys;
}

function makeProvider(keys) {
  const provider = new Provider(issuer, {
    jwks: { keys }, // the first RS256 key signs
    clients: CLIENTS,
    extraClientMetadata: { properties: ['urn:cf:tenant', 'urn:cf:roles', 'urn:cf:audience', 'urn:cf:ttl'] },
    clientDefaults: { id_token_signed_response_alg: 'RS256' },
    clientBasedCORS: corsAllowed,
    findAccount: (ctx, id) => {
      const user = userById(id);
      return user && {
        accountId: user.id,
        claims: () => ({ sub: user.id, preferred_username: user.username, email: `${user.username}@example.com` }),
      };
    },
    interactions: { url: (ctx, interaction) => `${prefix}/login-actions/${interaction.uid}` },
    pkce: { required: () => true },
    cookies: { keys: ['cf-test-oidc-cookie-key'] },
    routes: { // Keycloak's paths under the realm
      authorization: '/protocol/openid-connect/auth',
      token: '/protocol/openid-connect/token',
      jwks: '/protocol/openid-connect/certs',
      userinfo: '/protocol/openid-connect/userinfo',
      end_session: '/protocol/openid-connect/logout',
    },
    scopes: ['openid', 'profile', 'email'],
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        // every resource the client asks for is served as its configured audience
        getResourceServerInfo: (ctx, resource, client) => ({
          scope: 'profile email',
          audience: client['urn:cf:audience'],
          accessTokenTTL: client['urn:cf:ttl'],
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: (ctx, token) => {
      const client = token.client ?? ctx.oidc.client;
      if (!client) return undefined;
      const user = token.accountId ? userById(token.accountId) : undefined;
      const tenant = user ? user.tenant : client['urn:cf:tenant'];
      return {
        typ: 'Bearer',
        azp: client.clientId,
        preferred_username: user ? user.username : `service-account-${client.clientId}`,
        realm_access: { roles: [...(user ? user.roles : client['urn:cf:roles'])] },
        ...(tenant ? { tenant_id: tenant } : {}),
      };
    },
    formats: {
      customizers: {
        jwt: (ctx, token, jwt) => {
          jwt.header = { typ: 'JWT' }; // Keycloak's header: alg, typ JWT, kid
          const p = jwt.payload;
          if (!token.accountId) p.sub = serviceAccountId(p.client_id); // a service account
          p.scope = p.scope || 'profile email'; // Keycloak's default scopes when none are asked for
          p.jti = p.jti || randomUUID();
        },
      },
    },
  });
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  return provider;
}

let keys = loadKeys();
let provider = makeProvider(keys);
let handler = provider.callback();

function rotate() {
  keys = [newKey(), ...keys].slice(0, MAX_KEYS);
  saveKeys(keys);
  provider = makeProvider(keys);
  handler = provider.callback();
  return keys[0].kid;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// Keycloak's login page, reduced: username, password, "Sign In".
function loginPage(res, uid, clientId, error, username = '') {
  res.writeHead(error ? 401 : 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in to ${esc(realm)}</title></head>
<body><h1 id="kc-page-title">Sign in to your account</h1><p>for ${esc(clientId)}</p>
${error ? `<p id="input-error" role="alert">${esc(error)}</p>` : ''}
<form id="kc-form-login" method="post" action="${prefix}/login-actions/${esc(uid)}">
<label for="username">Username</label> <input id="username" name="username" value="${esc(username)}" autocomplete="username">
<label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password">
<input id="kc-login" type="submit" value="Sign In"></form></body></html>`);
}

async function formBody(req) {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 8192) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

// The login and consent steps of an authorization request (oidc-provider's "interactions").
// Consent is granted as asked, as Keycloak does for a client that does not require consent.
async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt, params } = details;
  if (prompt.name === 'consent') {
    const grant = details.grantId ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const d = prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes || {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  if (req.method !== 'POST') return loginPage(res, uid, params.client_id);
  const form = await formBody(req);
  const user = USERS.find((u) => u.username === form.get('username') && u.password === form.get('password'));
  if (!user) return loginPage(res, uid, params.client_id, 'Invalid username or password.', form.get('username') || '');
  return provider.interactionFinished(req, res, { login: { accountId: user.id } }, { mergeWithLastSubmission: false });
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

http.createServer((req, res) => {
  const url = req.url || '/';
  if (url.startsWith(`${prefix}/login-actions/`)) {
    return interaction(req, res).catch((e) => {
      console.error('interaction', e);
      if (!res.headersSent) json(res, 400, { error: 'invalid_request', error_description: e.message });
    });
  }
  if (url === prefix || url.startsWith(`${prefix}/`) || url.startsWith(`${prefix}?`)) {
    req.originalUrl = url;
    req.url = url.slice(prefix.length) || '/';
    if (req.url.startsWith('?')) req.url = `/${req.url}`;
    return handler(req, res);
  }
  if (url === '/admin/rotate' && req.method === 'POST') {
    const kid = rotate();
    console.log(`rotated: signing with kid ${kid}`);
    return json(res, 200, { kid, kids: keys.map((k) => k.kid) });
  }
  if (url === '/admin/keys' && req.method === 'GET') {
    return json(res, 200, { kid: keys[0].kid, kids: keys.map((k) => k.kid) });
  }
  return json(res, 404, { error: 'not_found' });
}).listen(port, '127.0.0.1', () => console.log(`listening ${issuer} (signing kid ${keys[0].kid})`));
