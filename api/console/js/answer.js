// One answer: the stages as they arrive, then the SQL, the explanation, the rows, the chart, and (developer view)
// tokens, attempts and timings. Everything from the model or the database is set as text.

import { h, fill, say } from './dom.js';
import { t } from './i18n.js';
import { highlight } from './sql.js';
import { resultTable } from './table.js';
import { renderChart } from './chart.js';

function stageLabel(stage, attempt) {
  const n = attempt || 1;
  if (stage === 'generating_sql') return n > 1 ? t('stage.correcting', { n }) : t('stage.generating_sql');
  if (stage === 'executing') return n > 1 ? t('stage.executing_again', { n }) : t('stage.executing');
  if (stage === 'analyzing') return t('stage.analyzing');
  return String(stage);
}

async function copyText(text, status) {
  try {
    await navigator.clipboard.writeText(text);
    say(status, t('common.copied'));
  } catch {
    say(status, t('common.copy_failed'), 'error');
  }
}

/** The SQL block with its copy button. */
export function sqlBlock(sql) {
  const status = h('span', { class: 'copy-status', role: 'status' });
  return h('section', { class: 'sql-block' },
    h('div', { class: 'block-head' }, h('h3', null, t('answer.sql')),
      h('button', { type: 'button', class: 'btn small copy-sql', onclick: () => copyText(sql, status) }, t('answer.copy_sql')),
      status),
    h('pre', { class: 'sql-pre' }, highlight(sql)));
}

function devPanel({ developer, attempts, executedSql, tables, stageTimes }) {
  const rows = [];
  const row = (name, value, key) => rows.push(h('div', { class: 'dev-row', dataset: { dev: key } },
    h('dt', null, name), h('dd', null, value)));
  if (developer) {
    row(t('dev.prompt_tokens'), developer.prompt_tokens ?? '–', 'prompt_tokens');
    row(t('dev.completion_tokens'), developer.completion_tokens ?? '–', 'completion_tokens');
  }
  const tries = developer ? developer.attempts : attempts;
  if (tries != null) row(t('dev.attempts'), tries, 'attempts');
  const ms = developer && developer.stage_ms;
  if (ms) {
    row(t('dev.stage_ms'), ['analyzing', 'generating_sql', 'executing']
      .map((stage) => `${stageLabel(stage, 1)}: ${t('dev.elapsed', { ms: ms[stage] ?? 0 })}`).join(' · '), 'stage_ms');
  } else if (stageTimes && stageTimes.length) {
    row(t('dev.stage_ms'), stageTimes.join(' · '), 'stage_ms');
  }
  const executed = (developer && developer.executed_sql) || executedSql;
  if (tables && tables.length) row(t('dev.tables'), tables.join(', '), 'tables');
  return h('details', { class: 'dev-panel', open: true },
    h('summary', null, t('dev.title')),
    h('dl', null, rows),
    executed ? h('div', { class: 'dev-sql' }, h('h4', null, t('dev.executed_sql')), h('pre', { class: 'sql-pre' }, highlight(executed))) : null);
}

/** A live answer, fed by the events of `/chat/stream`. */
export class AnswerCard {
  constructor({ developer = false } = {}) {
    this.developer = developer;
    this.stageList = h('ol', { class: 'stages', 'aria-label': 'progress' });
    this.status = h('p', { class: 'stream-status', role: 'status', 'aria-live': 'polite' });
    this.body = h('div', { class: 'answer-body' });
    this.el = h('article', { class: 'answer live' }, this.stageList, this.status, this.body);
    this.current = null;
    this.timings = [];
  }

  finishStage() {
    if (!this.current) return;
    const elapsed = Math.round(performance.now() - this.current.started);
    this.current.li.classList.remove('running');
    this.current.li.classList.add('done');
    this.timings.push(`${stageLabel(this.current.stage, this.current.attempt)}: ${t('dev.elapsed', { ms: elapsed })}`);
    if (this.developer) this.current.li.append(h('span', { class: 'elapsed' }, ` ${t('dev.elapsed', { ms: elapsed })}`));
    this.current = null;
  }

  stage(data) {
    this.finishStage();
    const li = h('li', { class: 'stage running', dataset: { stage: data.stage, attempt: String(data.attempt || 1) },
      title: data.message || '' }, stageLabel(data.stage, data.attempt));
    this.stageList.append(li);
    this.current = { li, stage: data.stage, attempt: data.attempt, started: performance.now() };
  }

  result(data) {
    this.finishStage();
    this.el.classList.add('answered');
    const parts = [sqlBlock(data.sql || '')];
    if (data.explanation) {
      parts.push(h('section', { class: 'explanation' }, h('h3', null, t('answer.explanation')), h('p', null, data.explanation)));
    }
    parts.push(resultTable({ columns: data.columns, rows: data.data || [], rowsCount: data.rows_count, truncated: data.truncated }));
    if (typeof data.execution_time === 'number') {
      parts.push(h('p', { class: 'muted' }, t('answer.time', { secs: data.execution_time.toFixed(3) })));
    }
    this.chartSlot = h('div', { class: 'chart-slot' });
    parts.push(this.chartSlot);
    if (this.developer || data.developer) {
      parts.push(devPanel({ developer: data.developer, tables: data.tables, stageTimes: this.timings }));
    }
    fill(this.body, parts);
  }

  chart(data) {
    const figure = renderChart(data.chart);
    if (figure && this.chartSlot) fill(this.chartSlot, h('h3', null, t('answer.chart')), figure);
  }

  error(data) {
    this.finishStage();
    this.el.classList.add('failed');
    const stopped = data.code === 'CANCELLED';
    this.body.append(h('div', { class: stopped ? 'notice stopped' : 'notice error', role: 'alert', dataset: { code: data.code || '' } },
      stopped ? t('chat.stopped') : h('strong', null, t('answer.error'), ': '), stopped ? null : data.message || data.code));
  }

  done() {
    this.finishStage();
    this.el.classList.remove('live');
    this.stageList.append(h('li', { class: 'stage done final', dataset: { stage: 'done' } }, t('stage.done')));
    say(this.status, '');
  }

  setStatus(kind, vars = {}) {
    if (kind === 'reconnecting') {
      this.el.classList.add('reconnecting');
      say(this.status, t('chat.reconnecting', { n: vars.attempt }), 'warn');
    } else if (kind === 'live') {
      this.el.classList.remove('reconnecting');
      say(this.status, t('chat.reconnected'));
    }
  }
}

/** A stored assistant message of `GET /conversations/{id}`. */
export function storedAnswer(message, developer) {
  const meta = message.metadata || {};
  const parts = [];
  if (meta.sql) parts.push(sqlBlock(meta.sql));
  parts.push(h('section', { class: 'explanation' }, h('p', null, message.content || '')));
  if (meta.rows_count != null) {
    parts.push(h('p', { class: 'result-meta' }, t('answer.rows', { n: meta.rows_count }),
      meta.truncated ? h('span', { class: 'truncated' }, ' ', t('answer.truncated', { n: meta.rows_count })) : null));
  }
  const figure = meta.visualization ? renderChart(meta.visualization) : null;
  if (figure) parts.push(h('div', { class: 'chart-slot' }, h('h3', null, t('answer.chart')), figure));
  if (developer) {
    parts.push(devPanel({ attempts: meta.attempts, executedSql: meta.executed_sql, tables: meta.tables }));
  }
  return h('article', { class: 'answer stored' }, h('div', { class: 'answer-body' }, parts));
}
