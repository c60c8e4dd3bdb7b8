// The result table: every cell is text; headers are buttons that sort the rows.

import { h, fill } from './dom.js';
import { t } from './i18n.js';

function display(value) {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;
  if (b === null || b === undefined) return -1;
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const na = Number(a);
  const nb = Number(b);
  if (a !== '' && b !== '' && !Number.isNaN(na) && !Number.isNaN(nb)) return na - nb;
  return display(a).localeCompare(display(b));
}

/** A table of `rows` (objects keyed by column) in `columns` order, with the row count and a truncation notice. */
export function resultTable({ columns, rows, rowsCount, truncated }) {
  const names = columns && columns.length ? columns : Object.keys(rows[0] || {});
  const order = rows.map((_, i) => i);
  let sortColumn = null;
  let ascending = true;
  const body = h('tbody');
  const headers = names.map((name) => {
    const button = h('button', { type: 'button', class: 'sort', title: t('answer.sort', { column: name }) }, name);
    const th = h('th', { scope: 'col', 'aria-sort': 'none' }, button);
    button.addEventListener('click', () => {
      ascending = sortColumn === name ? !ascending : true;
      sortColumn = name;
      order.sort((i, j) => compare(rows[i][name], rows[j][name]) * (ascending ? 1 : -1) || i - j);
      for (const other of headers) other.setAttribute('aria-sort', 'none');
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      draw();
    });
    return th;
  });
  function draw() {
    fill(body, order.map((i) => h('tr', null, names.map((name) => {
      const value = rows[i][name];
      return h('td', { class: value === null || value === undefined ? 'null' : typeof value === 'number' ? 'num' : null },
        display(value));
    }))));
  }
  draw();
  const count = rowsCount ?? rows.length;
  return h('div', { class: 'result' },
    h('p', { class: 'result-meta' }, t('answer.rows', { n: count }),
      truncated ? h('span', { class: 'truncated', role: 'note' }, ' ', t('answer.truncated', { n: count })) : null),
    h('div', { class: 'table-scroll', tabindex: '0' },
      h('table', { class: 'rows' }, h('thead', null, h('tr', null, headers)), body)));
}
