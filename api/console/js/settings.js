// Settings: preferences (`/config`), prompts (`/prompts`), API keys (`/api-keys`).

import { h, fill, field, select, say, confirmButton, when } from './dom.js';
import { t, describeError, getLanguage } from './i18n.js';
import { api } from './api.js';

function configForm(ctx) {
  const c = ctx.config;
  const controls = {
    language: select({ id: 'cfg-language' }, [['zh', '中文'], ['en', 'English']], c.language),
    theme: select({ id: 'cfg-theme' }, [['light', t('settings.theme_light')], ['dark', t('settings.theme_dark')],
      ['system', t('settings.theme_system')]], c.theme),
    default_model_id: select({ id: 'cfg-model' }, ctx.models.map((m) => [m.id, m.name]), c.default_model_id),
    default_connection_id: select({ id: 'cfg-connection' }, ctx.connections.map((x) => [x.id, x.name]), c.default_connection_id),
    view_mode: select({ id: 'cfg-view' }, [['user', t('settings.view_user')], ['developer', t('settings.view_developer')]], c.view_mode),
    context_rounds: h('input', { id: 'cfg-rounds', type: 'number', min: 0, max: 20, value: String(c.context_rounds) }),
  };
  const message = h('p', { class: 'notice-line', role: 'status', id: 'cfg-status' });
  const form = h('form', { class: 'panel', id: 'config-form', onsubmit: async (event) => {
    event.preventDefault();
    const body = {
      language: controls.language.value,
      theme: controls.theme.value,
      view_mode: controls.view_mode.value,
      context_rounds: Number(controls.context_rounds.value),
    };
    if (controls.default_model_id.value) body.default_model_id = controls.default_model_id.value;
    if (controls.default_connection_id.value) body.default_connection_id = controls.default_connection_id.value;
    try {
      const saved = await api.put('/config', body);
      ctx.applyConfig(saved, { rerender: true, notice: 'common.saved' });
    } catch (error) {
      say(message, describeError(error), 'error');
    }
  } },
  h('h3', null, t('settings.config')),
  field(t('settings.language'), controls.language),
  field(t('settings.theme'), controls.theme),
  field(t('settings.default_model'), controls.default_model_id),
  field(t('settings.default_connection'), controls.default_connection_id),
  field(t('settings.view_mode'), controls.view_mode),
  field(t('settings.context_rounds'), controls.context_rounds),
  message,
  h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'btn primary', id: 'cfg-save' }, t('common.save'))));
  return { form, message };
}

const PROMPTS = ['system_prompt', 'sql_generation', 'correction', 'explanation'];

function promptsForm() {
  const message = h('p', { class: 'notice-line', role: 'status', id: 'prompts-status' });
  const body = h('div', null, h('p', { class: 'muted' }, t('common.loading')));
  const areas = {};
  let shown = {};
  function draw(view) {
    shown = view;
    fill(body, PROMPTS.map((key) => {
      areas[key] = h('textarea', { id: `prompt-${key}`, rows: 6, value: view[key] || '', spellcheck: false });
      const customized = (view.customized || []).includes(key);
      const placeholders = ((view.placeholders || {})[key] || []).map((p) => `{${p.name || p}}`).join(' ');
      return h('div', { class: 'prompt', dataset: { prompt: key, customized: String(customized) } },
        field(h('span', null, t(`prompts.${key}`), customized ? h('span', { class: 'badge default' }, t('prompts.customized')) : null),
          areas[key], placeholders ? t('prompts.placeholders', { list: placeholders }) : null));
    }));
  }
  async function load() {
    try {
      draw(await api.get(`/prompts?language=${getLanguage()}`));
    } catch (error) {
      say(message, describeError(error), 'error');
    }
  }
  const form = h('form', { class: 'panel', id: 'prompts-form', onsubmit: async (event) => {
    event.preventDefault();
    const update = {};
    // Only what was changed becomes the user's own template; the others keep following the defaults.
    for (const key of PROMPTS) if (areas[key].value !== shown[key]) update[key] = areas[key].value;
    try {
      draw(await api.put('/prompts', update));
      say(message, t('common.saved'), 'ok');
    } catch (error) {
      say(message, describeError(error), 'error');
    }
  } },
  h('h3', null, t('prompts.title')), body, message,
  h('div', { class: 'actions' },
    h('button', { type: 'submit', class: 'btn primary', id: 'prompts-save' }, t('common.save')),
    h('button', { type: 'button', class: 'btn', id: 'prompts-reset', onclick: async () => {
      try {
        draw(await api.post('/prompts/reset'));
        say(message, t('prompts.reset_done'), 'ok');
      } catch (error) {
        say(message, describeError(error), 'error');
      }
    } }, t('prompts.reset'))));
  load();
  return form;
}

function keysPanel() {
  const list = h('ul', { class: 'cards', id: 'keys-list' });
  const message = h('p', { class: 'notice-line', role: 'status', id: 'keys-status' });
  const revealed = h('div', { class: 'reveal-slot', id: 'key-reveal' });
  const name = h('input', { type: 'text', id: 'key-name', required: true, maxlength: 100, autocomplete: 'off' });

  async function refresh() {
    try {
      const { api_keys: keys } = await api.get('/api-keys');
      fill(list, keys.length ? keys.map((key) => h('li', { class: 'card', dataset: { id: key.id, name: key.name } },
        h('div', { class: 'card-head' }, h('h4', null, key.name), h('code', { class: 'key-hint' }, `${key.prefix}…${key.last4}`)),
        h('p', { class: 'muted' }, when(key.created_at, getLanguage()), ' · ',
          key.last_used_at ? t('keys.last_used', { when: when(key.last_used_at, getLanguage()) }) : t('keys.never_used')),
        h('div', { class: 'actions' }, confirmButton(t('keys.revoke'), t('keys.confirm_revoke'), t('common.cancel'), async () => {
          try {
            await api.del(`/api-keys/${key.id}`);
            say(message, t('keys.revoked'), 'ok');
            refresh();
          } catch (error) {
            say(message, describeError(error), 'error');
          }
        }, { class: 'btn danger revoke' })))) : h('li', { class: 'muted' }, t('common.none')));
    } catch (error) {
      say(message, describeError(error), 'error');
    }
  }

  function reveal(secret) {
    const copyStatus = h('span', { role: 'status' });
    const done = h('button', { type: 'button', class: 'btn', id: 'key-dismiss', onclick: () => { fill(revealed); name.focus(); } },
      t('keys.saved_it'));
    fill(revealed, h('div', { class: 'panel reveal', role: 'alert' },
      h('p', null, t('keys.created')),
      h('code', { class: 'secret', id: 'new-key' }, secret),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'btn', onclick: async () => {
          try {
            await navigator.clipboard.writeText(secret);
            say(copyStatus, t('common.copied'));
          } catch {
            say(copyStatus, t('common.copy_failed'), 'error');
          }
        } }, t('common.copy')), done, copyStatus)));
    done.focus();
  }

  const form = h('form', { class: 'inline-form', id: 'key-form', onsubmit: async (event) => {
    event.preventDefault();
    try {
      const created = await api.post('/api-keys', { name: name.value.trim() });
      name.value = '';
      reveal(created.key);
      refresh();
    } catch (error) {
      say(message, describeError(error), 'error');
    }
  } }, field(t('keys.name'), name), h('button', { type: 'submit', class: 'btn primary', id: 'key-create' }, t('keys.create')));
  refresh();
  return h('section', { class: 'panel', id: 'keys-panel' }, h('h3', null, t('keys.title')), form, revealed, message, list);
}

export function settingsView(ctx) {
  const { form } = configForm(ctx);
  return h('section', { class: 'view settings', 'aria-labelledby': 'settings-title' },
    h('div', { class: 'view-head' }, h('h2', { id: 'settings-title' }, t('settings.title'))),
    h('div', { class: 'settings-grid' }, form, keysPanel()), promptsForm());
}
