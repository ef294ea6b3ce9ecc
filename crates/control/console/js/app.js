// The console shell: sign in, then route `#/page/arg` to a page module. A page's render may
// return a cleanup function (closing live streams) that runs when the page is left.
import { start, signOut, user } from './auth.js';
import { h, mount, errorBox } from './ui.js';

const pages = {
  calls: () => import('./pages/calls.js'),
  call: () => import('./pages/call.js'),
  agents: () => import('./pages/agents.js'),
  agent: () => import('./pages/agent.js'),
  talk: () => import('./pages/talk.js'),
  knowledge: () => import('./pages/knowledge.js'),
  campaigns: () => import('./pages/campaigns.js'),
  usage: () => import('./pages/usage.js'),
};

let cleanup = null;
let generation = 0;

function route() {
  const parts = (location.hash || '#/calls').slice(2).split('/').map(decodeURIComponent);
  let [name, arg] = parts;
  if (name === 'calls' && arg) name = 'call';
  if (name === 'agents' && arg) name = 'agent';
  return { name: pages[name] ? name : 'calls', arg, rest: parts.slice(2) };
}

async function show() {
  const mine = ++generation;
  if (cleanup) { try { cleanup(); } catch (_) {} cleanup = null; }
  const r = route();
  const section = r.name === 'call' ? 'calls' : r.name === 'agent' || r.name === 'talk' ? 'agents' : r.name;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === `#/${section}`) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  mount(h('p', {}, 'Loading…'));
  try {
    const mod = await pages[r.name]();
    if (mine !== generation) return;
    const c = await mod.render(r.arg, r.rest);
    if (mine !== generation) { if (c) c(); return; }
    cleanup = c || null;
    const heading = document.querySelector('#main h1');
    document.title = `${heading ? heading.textContent : 'callfunnel'} · callfunnel console`;
    // after a navigation, start reading at the new page (the first page keeps the skip link first)
    if (mine > 1) document.getElementById('main').focus({ preventScroll: true });
  } catch (e) {
    if (mine === generation) mount(h('h1', {}, 'Something went wrong'), errorBox(e));
  }
}

async function boot() {
  try {
    const me = await start();
    document.getElementById('who').replaceChildren(
      h('span', {}, `${me.user}${me.tenant ? ` · ${me.tenant}` : ''}`),
      h('button', { type: 'button', class: 'secondary', onclick: signOut }, 'Sign out'));
  } catch (e) {
    mount(h('h1', {}, 'Sign-in failed'), errorBox(e), h('p', {}, h('a', { href: '/console/' }, 'Try again')));
    return;
  }
  window.addEventListener('hashchange', show);
  show();
}

boot();
