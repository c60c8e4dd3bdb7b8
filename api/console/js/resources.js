// Models and connections: list, add, edit, test, delete; a connection's schema.

import { h, fill, field, select, say, confirmButton } from './dom.js';
import { t, describeError } from './i18n.js';
import { api } from './api.js';

function badge(text, kind) {
  return h('span', { class: `badge ${kind || ''}` }, text);
}

function status(value, yes, no) {
  if (value === true) return badge(yes, 'ok');
  if (value === false) return badge(no, 'bad');
  return badge(t('common.unknown'), 'muted');
}

/** A generic list-and-form view. `spec` says how to list, show, edit and test one kind of resource. */
function resourceView(ctx, spec) {
  const list = h('ul', { class: 'cards', id: `${spec.key}-list` });
  const notice = h('p', { class: 'notice-line', role: 'status', id: `${spec.key}-notice`, 'aria-live': 'polite' });
  const formSlot = h('div', { class: 'form-slot' });
  const extra = h('div', { class: 'extra-slot' });
  const addButton = h('button', { type: 'button', class: 'btn primary', id: `${spec.key}-add`,
    onclick: () => openForm(null) }, spec.addLabel);

  async function refresh() {
    try {
      const items = await spec.list();
      await ctx.reloadResources();
      fill(list, items.length ? items.map(card) : h('li', { class: 'muted' }, t('common.none')));
    } catch (error) {
      say(notice, describeError(error), 'error');
    }
  }

  function card(item) {
    const result = h('p', { class: 'test-result', role: 'status' });
    const actions = [
      h('button', { type: 'button', class: 'btn test', onclick: async (event) => {
        event.target.disabled = true;
        say(result, t('common.loading'));
        try {
          const [text, ok] = spec.describeTest(await api.post(`${spec.path}/${item.id}/test`));
          say(result, text, ok ? 'ok' : 'error');
          result.dataset.ok = String(ok);
        } catch (error) {
          say(result, describeError(error), 'error');
        }
        event.target.disabled = false;
      } }, t('common.test')),
      h('button', { type: 'button', class: 'btn edit', onclick: () => openForm(item) }, t('common.edit')),
      !item.is_default ? h('button', { type: 'button', class: 'btn make-default', onclick: async () => {
        try {
          await api.put(`${spec.path}/${item.id}`, { is_default: true });
          refresh();
        } catch (error) {
          say(notice, describeError(error), 'error');
        }
      } }, t('common.make_default')) : null,
      ...(spec.actions ? spec.actions(item, extra) : []),
      confirmButton(t('common.delete'), t('common.confirm_delete'), t('common.cancel'), async () => {
        try {
          await api.del(`${spec.path}/${item.id}`);
          refresh();
        } catch (error) {
          say(notice, describeError(error), 'error');
        }
      }, { class: 'btn danger delete' }),
    ];
    return h('li', { class: 'card', dataset: { id: item.id, name: item.name } },
      h('div', { class: 'card-head' }, h('h3', null, item.name), item.is_default ? badge(t('common.default'), 'default') : null,
        spec.status(item)),
      h('p', { class: 'muted' }, spec.summary(item)),
      h('div', { class: 'actions' }, actions), result);
  }

  function openForm(item) {
    const inputs = spec.fields(item);
    const message = h('p', { class: 'notice-line', role: 'alert' });
    const form = h('form', { class: 'panel resource-form', id: `${spec.key}-form`, onsubmit: async (event) => {
      event.preventDefault();
      const body = spec.body(inputs, item);
      form.querySelector('button[type=submit]').disabled = true;
      try {
        if (item) await api.put(`${spec.path}/${item.id}`, body);
        else await api.post(spec.path, body);
        fill(formSlot);
        say(notice, t('common.saved'), 'ok');
        refresh();
        addButton.focus();
      } catch (error) {
        say(message, describeError(error), 'error');
        form.querySelector('button[type=submit]').disabled = false;
      }
    } },
    h('h3', null, item ? spec.editLabel : spec.addLabel),
    Object.values(inputs).map(([label, control, hint]) => field(label, control, hint)),
    message,
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'btn primary' }, t('common.save')),
      h('button', { type: 'button', class: 'btn', onclick: () => { fill(formSlot); addButton.focus(); } }, t('common.cancel'))));
    fill(formSlot, form);
    form.querySelector('input, select')?.focus();
  }

  refresh();
  return h('section', { class: 'view', 'aria-labelledby': `${spec.key}-title` },
    h('div', { class: 'view-head' }, h('h2', { id: `${spec.key}-title` }, spec.title), addButton),
    notice, formSlot, list, extra);
}

const input = (props) => h('input', { type: 'text', autocomplete: 'off', ...props });
const checkbox = (props) => h('input', { type: 'checkbox', ...props });
const text = (control) => control.value.trim();

export function modelsView(ctx) {
  return resourceView(ctx, {
    key: 'models',
    path: '/models',
    title: t('models.title'),
    addLabel: t('models.add'),
    editLabel: t('models.edit'),
    list: async () => (await api.get('/models')).models,
    status: (m) => status(m.is_available, t('models.available'), t('models.unavailable')),
    summary: (m) => [m.provider, m.model_id, m.base_url, m.has_api_key ? t('models.has_key') : null].filter(Boolean).join(' · '),
    describeTest: (r) => (r.available
      ? [t('models.test_ok', { ms: r.latency_ms }), true]
      : [t('models.test_failed', { why: r.error ? `${r.error.kind || ''} ${r.error.message || ''}`.trim() : '?' }), false]),
    fields: (m) => ({
      name: [t('models.name'), input({ id: 'model-name', required: true, value: m ? m.name : '' })],
      provider: [t('models.provider'), select({ id: 'model-provider' }, [['openai', 'OpenAI-compatible'], ['anthropic', 'Anthropic']],
        m ? m.provider : 'openai')],
      model_id: [t('models.model_id'), input({ id: 'model-model-id', required: true, value: m ? m.model_id : '' })],
      base_url: [t('models.base_url'), input({ id: 'model-base-url', type: 'url', value: m && m.base_url ? m.base_url : '' })],
      api_key: [t('models.api_key'), input({ id: 'model-api-key', type: 'password', autocomplete: 'new-password' }),
        m ? t('models.api_key_keep') : null],
      context_window: [t('models.context_window'), input({ id: 'model-context-window', type: 'number', min: 1024,
        value: m && m.context_window ? String(m.context_window) : '' })],
      is_default: [t('models.is_default'), checkbox({ id: 'model-default', checked: m ? m.is_default : false, disabled: m && m.is_default })],
    }),
    body: (f, m) => {
      const body = { name: text(f.name[1]), provider: f.provider[1].value, model_id: text(f.model_id[1]),
        base_url: text(f.base_url[1]) || null };
      if (text(f.api_key[1]) || !m) body.api_key = text(f.api_key[1]) || null;
      const windowValue = text(f.context_window[1]);
      if (windowValue) body.context_window = Number(windowValue);
      else if (m && m.context_window) body.context_window = null;
      if (f.is_default[1].checked) body.is_default = true;
      return body;
    },
  });
}

function schemaPanel(connection, slot) {
  const body = h('div', { class: 'schema-body' }, h('p', { class: 'muted' }, t('common.loading')));
  async function load(refresh) {
    fill(body, h('p', { class: 'muted' }, t('common.loading')));
    try {
      const schema = await api.get(`/connections/${connection.id}/schema${refresh ? '?refresh=true' : ''}`);
      fill(body, schema.tables.length === 0 ? h('p', { class: 'muted' }, t('common.none')) : schema.tables.map((table) =>
        h('details', { class: 'schema-table', dataset: { table: table.name } },
          h('summary', null, h('strong', null, table.name), ' ', h('span', { class: 'muted' }, table.kind || '',
            table.row_count != null ? ` · ${t('conn.row_count', { n: table.row_count })}` : '')),
          table.comment ? h('p', { class: 'muted' }, table.comment) : null,
          h('div', { class: 'table-scroll' }, h('table', { class: 'rows' },
            h('thead', null, h('tr', null, [t('conn.column'), t('conn.type'), t('conn.nullable'), t('conn.primary')]
              .map((name) => h('th', { scope: 'col' }, name)))),
            h('tbody', null, table.columns.map((c) => h('tr', null, h('td', null, c.name), h('td', null, c.type),
              h('td', null, c.nullable ? t('common.yes') : t('common.no')), h('td', null, c.primary ? '✓' : '')))))),
          (table.foreign_keys || []).map((fk) => h('p', { class: 'muted' },
            `${fk.columns.join(', ')} → ${t('conn.references')} ${fk.referenced_table}(${fk.referenced_columns.join(', ')})`)))));
    } catch (error) {
      fill(body, h('p', { class: 'notice-line', role: 'alert', dataset: { kind: 'error' } }, describeError(error)));
    }
  }
  const panel = h('section', { class: 'panel schema', id: 'schema-panel', 'aria-labelledby': 'schema-title' },
    h('div', { class: 'view-head' }, h('h3', { id: 'schema-title' }, t('conn.schema_of', { name: connection.name })),
      h('button', { type: 'button', class: 'btn', onclick: () => load(true) }, t('conn.refresh_schema')),
      h('button', { type: 'button', class: 'btn', onclick: () => fill(slot) }, t('conn.close_schema'))),
    body);
  fill(slot, panel);
  load(false);
  panel.scrollIntoView({ block: 'nearest' });
}

export function connectionsView(ctx) {
  return resourceView(ctx, {
    key: 'connections',
    path: '/connections',
    title: t('conn.title'),
    addLabel: t('conn.add'),
    editLabel: t('conn.edit'),
    list: async () => (await api.get('/connections')).connections,
    status: (c) => status(c.is_connected, t('conn.connected'), t('conn.not_connected')),
    summary: (c) => [c.driver, c.host ? `${c.host}${c.port ? `:${c.port}` : ''}` : null, c.database].filter(Boolean).join(' · '),
    describeTest: (r) => (r.connected
      ? [t('conn.test_ok', { version: r.version || '?', tables: r.tables_count ?? '?', ms: r.latency_ms }), true]
      : [t('conn.test_failed', { why: r.message }), false]),
    actions: (c, slot) => [h('button', { type: 'button', class: 'btn schema-btn', onclick: () => schemaPanel(c, slot) }, t('conn.schema'))],
    fields: (c) => ({
      name: [t('conn.name'), input({ id: 'conn-name', required: true, value: c ? c.name : '' })],
      driver: [t('conn.driver'), select({ id: 'conn-driver' }, [['sqlite', 'SQLite'], ['postgresql', 'PostgreSQL'],
        ['mysql', 'MySQL / MariaDB'], ['redis', 'Redis']], c ? c.driver : 'sqlite')],
      host: [t('conn.host'), input({ id: 'conn-host', value: c && c.host ? c.host : '' })],
      port: [t('conn.port'), input({ id: 'conn-port', type: 'number', min: 1, max: 65535, value: c && c.port ? String(c.port) : '' })],
      username: [t('conn.username'), input({ id: 'conn-username' })],
      password: [t('conn.password'), input({ id: 'conn-password', type: 'password', autocomplete: 'new-password' }),
        c ? t('conn.password_keep') : null],
      database: [t('conn.database'), input({ id: 'conn-database', required: true, value: c ? c.database : '' })],
      is_default: [t('conn.is_default'), checkbox({ id: 'conn-default', checked: c ? c.is_default : false, disabled: c && c.is_default })],
    }),
    body: (f, c) => {
      const driver = f.driver[1].value;
      const body = { name: text(f.name[1]), driver, database: text(f.database[1]) };
      if (driver !== 'sqlite') {
        body.host = text(f.host[1]) || null;
        body.port = text(f.port[1]) ? Number(text(f.port[1])) : null;
        if (text(f.username[1]) || !c) body.username = text(f.username[1]) || null;
      } else if (c) {
        Object.assign(body, { host: null, port: null });
      }
      if (text(f.password[1])) body.password = f.password[1].value;
      if (f.is_default[1].checked) body.is_default = true;
      return body;
    },
  });
}
