// DOM helpers. Text always goes in as text nodes: nothing here parses HTML.

const PROPERTIES = new Set(['value', 'checked', 'disabled', 'selected', 'hidden', 'open', 'required', 'multiple']);

/** `h('button', {class: 'x', onclick: f}, 'text', child)`: an element with attributes, listeners and children. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  add(el, children);
  return el;
}

/** An SVG element (`createElementNS`) with attributes and children. */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value != null) el.setAttribute(name, String(value));
  }
  add(el, children);
  return el;
}

function setProps(el, props) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value == null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (PROPERTIES.has(name)) el[name] = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
}

/** Appends children (nodes, strings, numbers, arrays of them; null and false are skipped) as nodes. */
export function add(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  return add(el, children);
}

/** A labelled form field: `<label>text <input></label>` plus an optional hint. */
export function field(label, control, hint) {
  return h('label', { class: 'field' }, h('span', { class: 'field-label' }, label), control,
    hint ? h('span', { class: 'field-hint' }, hint) : null);
}

/** A `<select>` of `[value, text]` pairs with `selected` chosen. */
export function select(props, options, selected) {
  return h('select', props, options.map(([value, text]) =>
    h('option', { value, selected: String(value) === String(selected ?? '') }, text)));
}

/** A short notice in `region` (a role=status or role=alert element), replacing what it said. */
export function say(region, text, kind = 'info') {
  if (!region) return;
  region.dataset.kind = kind;
  fill(region, text || '');
}

/** A button that needs a second click to act: the first turns it into "confirm" + "cancel". */
export function confirmButton(label, confirmLabel, cancelLabel, action, props = {}) {
  const box = h('span', { class: 'confirm-box' });
  const first = h('button', { type: 'button', class: 'btn danger', ...props, onclick: () => {
    fill(box,
      h('button', { type: 'button', class: 'btn danger confirm', onclick: async () => {
        fill(box, first);
        await action();
      } }, confirmLabel),
      h('button', { type: 'button', class: 'btn', onclick: () => { fill(box, first); first.focus(); } }, cancelLabel));
    box.querySelector('button.confirm').focus();
  } }, label);
  box.append(first);
  return box;
}

/** A date as the user's locale writes it (empty for none). */
export function when(iso, language) {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString(language === 'zh' ? 'zh-CN' : 'en');
}
