// The console's entry point: the login screen, the shell (header, sidebar, main view) and the hash routes
// #/chat, #/chat/<id>, #/models, #/connections, #/settings.

import { h, fill, field, say } from './dom.js';
import { t, setLanguage, getLanguage, describeError } from './i18n.js';
import * as auth from './api.js';
import { api } from './api.js';
import { chatView } from './chat.js';
import { conversationList } from './conversations.js';
import { modelsView, connectionsView } from './resources.js';
import { settingsView } from './settings.js';

const root = document.getElementById('app');
const ctx = {
  user: null,
  config: { language: 'en', theme: 'system', view_mode: 'user', context_rounds: 3 },
  models: [],
  connections: [],
  conversations: null,
  refreshConversations: () => ctx.conversations && ctx.conversations.refresh(),
  reloadResources,
  applyConfig,
};
let main = null;
let toast = null;

setLanguage(getLanguage());
applyTheme('system');

function applyTheme(theme) {
  if (theme === 'dark' || theme === 'light') document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function applyConfig(config, { rerender = false, notice = '' } = {}) {
  // `notice` is a string key: it is looked up after the language changed.
  ctx.config = config;
  setLanguage(config.language);
  applyTheme(config.theme);
  document.documentElement.dataset.viewMode = config.view_mode;
  if (rerender) {
    renderShell();
    route();
    if (notice) notify(t(notice));
  }
}

async function reloadResources() {
  const [models, connections] = await Promise.all([api.get('/models'), api.get('/connections')]);
  ctx.models = models.models;
  ctx.connections = connections.connections;
  // The defaults are flags of the rows: keep the config's view of them current.
  ctx.config.default_model_id = (ctx.models.find((m) => m.is_default) || {}).id ?? null;
  ctx.config.default_connection_id = (ctx.connections.find((c) => c.is_default) || {}).id ?? null;
}

auth.onSessionEnded((reason) => {
  const key = reason === 'session_revoked' ? 'session.revoked' : reason === 'refresh_token_reused' ? 'session.reused' : 'session.expired';
  loginScreen(t(key));
});

/** A short message in the corner that goes away by itself. */
function notify(text) {
  say(toast, text, 'ok');
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => say(toast, ''), 4000);
}

// --- login and registration ---

function loginScreen(message = '', mode = 'login') {
  document.title = t('app.title');
  const registering = mode === 'register';
  const email = h('input', { type: 'email', id: 'auth-email', name: 'email', required: true, autocomplete: 'username' });
  const password = h('input', { type: 'password', id: 'auth-password', name: 'password', required: true,
    autocomplete: registering ? 'new-password' : 'current-password', minlength: registering ? 8 : null });
  const displayName = h('input', { type: 'text', id: 'auth-name', name: 'display_name', autocomplete: 'nickname', maxlength: 100 });
  const alert = h('p', { class: 'notice-line', role: 'alert', id: 'auth-message' });
  if (message) say(alert, message, 'warn');
  const submit = h('button', { type: 'submit', class: 'btn primary', id: 'auth-submit' }, registering ? t('auth.register') : t('auth.login'));
  const form = h('form', { class: 'panel auth-form', id: registering ? 'register-form' : 'login-form', onsubmit: async (event) => {
    event.preventDefault();
    submit.disabled = true;
    say(alert, t('auth.working'));
    try {
      if (registering) await auth.register(email.value.trim(), password.value, displayName.value.trim());
      else await auth.login(email.value.trim(), password.value);
      password.value = '';
      await enter();
    } catch (error) {
      say(alert, describeError(error), 'error');
      submit.disabled = false;
      (error.details && error.details.field === 'email' ? email : password).focus();
    }
  } },
  h('h2', null, registering ? t('auth.register') : t('auth.login')),
  field(t('auth.email'), email),
  field(t('auth.password'), password, registering ? t('auth.password_hint') : null),
  registering ? field(t('auth.display_name'), displayName) : null,
  alert,
  h('div', { class: 'actions' }, submit,
    h('button', { type: 'button', class: 'btn link', id: 'auth-switch',
      onclick: () => loginScreen('', registering ? 'login' : 'register') }, registering ? t('auth.to_login') : t('auth.to_register'))),
  h('p', { class: 'muted small' }, t('auth.tokens_note')));
  fill(root, h('main', { class: 'auth-page', id: 'main' }, h('h1', { class: 'brand' }, 'QueryGPT'), form));
  main = null;
  email.focus();
}

async function enter() {
  const [user, config] = await Promise.all([api.get('/auth/me'), api.get('/config')]);
  ctx.user = user;
  await reloadResources();
  applyConfig(config);
  renderShell();
  if (!location.hash || location.hash === '#') history.replaceState(null, '', '#/chat');
  route();
}

// --- the shell ---

function renderShell() {
  document.title = t('app.title');
  const menu = h('button', { type: 'button', class: 'btn menu-toggle', id: 'menu-toggle', 'aria-expanded': 'false',
    'aria-controls': 'sidebar' }, '☰ ', t('app.menu'));
  const sidebar = h('aside', { class: 'sidebar', id: 'sidebar' });
  menu.addEventListener('click', () => {
    const open = !sidebar.classList.contains('open');
    sidebar.classList.toggle('open', open);
    menu.setAttribute('aria-expanded', String(open));
  });
  const logout = h('button', { type: 'button', class: 'btn', id: 'logout', onclick: async () => {
    try {
      await auth.logout();
    } catch {
      // the tokens are forgotten here in any case
    }
    ctx.user = null;
    loginScreen(t('auth.logged_out'));
  } }, t('app.logout'));
  const nav = h('nav', { class: 'nav', 'aria-label': 'main' },
    [['chat', 'nav.chat'], ['models', 'nav.models'], ['connections', 'nav.connections'], ['settings', 'nav.settings']]
      .map(([path, key]) => h('a', { href: `#/${path}`, class: 'nav-link', dataset: { route: path } }, t(key))));
  ctx.conversations = conversationList({ onDeleted: (id) => {
    if (location.hash === `#/chat/${id}`) location.hash = '#/chat';
  } });
  sidebar.append(nav, ctx.conversations.el);
  toast = h('p', { class: 'toast', role: 'status', id: 'toast', 'aria-live': 'polite' });
  main = h('main', { class: 'main', id: 'main', tabindex: '-1' });
  fill(root,
    h('a', { class: 'skip', href: '#main', onclick: (event) => { event.preventDefault(); main.focus(); } }, t('app.skip')),
    h('header', { class: 'topbar' }, menu, h('h1', { class: 'brand' }, 'QueryGPT'), h('span', { class: 'spacer' }),
      h('span', { class: 'user', id: 'user-name' }, ctx.user ? ctx.user.display_name || ctx.user.email : ''), logout),
    h('div', { class: 'layout' }, sidebar, main),
    toast);
  ctx.conversations.refresh();
}

function route() {
  if (!main || !auth.isLoggedIn()) return;
  const [, name = 'chat', id] = (location.hash || '#/chat').split('/');
  for (const link of document.querySelectorAll('.nav-link')) {
    if (link.dataset.route === name) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const sidebar = document.getElementById('sidebar');
  if (sidebar) sidebar.classList.remove('open');
  document.getElementById('menu-toggle')?.setAttribute('aria-expanded', 'false');
  let view;
  switch (name) {
    case 'models': view = modelsView(ctx); break;
    case 'connections': view = connectionsView(ctx); break;
    case 'settings': view = settingsView(ctx); break;
    default: view = chatView(ctx, id ? decodeURIComponent(id) : null);
  }
  fill(main, view);
}

window.addEventListener('hashchange', route);
loginScreen();
