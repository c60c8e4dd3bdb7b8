// The conversation list in the sidebar: search, favorites, delete.

import { h, fill, say, confirmButton, when } from './dom.js';
import { t, describeError, getLanguage } from './i18n.js';
import { api } from './api.js';

/** `{el, refresh}`: the list; `onDeleted(id)` is told which conversation went away. */
export function conversationList({ onDeleted }) {
  const search = h('input', { type: 'search', id: 'conv-search', name: 'q', maxlength: 200, autocomplete: 'off' });
  const favorites = h('input', { type: 'checkbox', id: 'conv-favorites', name: 'favorites' });
  const list = h('ul', { class: 'conv-list', id: 'conv-list' });
  const status = h('p', { class: 'notice-line small', role: 'status' });
  let timer = null;
  let generation = 0;

  const form = h('form', { class: 'conv-search', role: 'search', onsubmit: (event) => { event.preventDefault(); refresh(); } },
    h('label', { for: 'conv-search', class: 'field-label' }, t('conv.search')),
    search,
    h('label', { class: 'check' }, favorites, h('span', null, t('conv.favorites'))));
  search.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
  favorites.addEventListener('change', refresh);

  function item(conversation) {
    const favorite = h('button', { type: 'button', class: 'icon-btn fav', 'aria-pressed': String(conversation.is_favorite),
      'aria-label': conversation.is_favorite ? t('conv.unfavorite') : t('conv.favorite'),
      title: conversation.is_favorite ? t('conv.unfavorite') : t('conv.favorite') }, conversation.is_favorite ? '★' : '☆');
    favorite.addEventListener('click', async () => {
      try {
        const result = await api.post(`/conversations/${conversation.id}/favorite`);
        conversation.is_favorite = result.is_favorite;
        refresh();
      } catch (error) {
        say(status, describeError(error), 'error');
      }
    });
    const remove = confirmButton('×', t('common.confirm_delete'), t('common.cancel'), async () => {
      try {
        await api.del(`/conversations/${conversation.id}`);
        say(status, t('conv.deleted'));
        onDeleted(conversation.id);
        refresh();
      } catch (error) {
        say(status, describeError(error), 'error');
      }
    }, { class: 'icon-btn danger delete', 'aria-label': `${t('common.delete')}: ${conversation.title}`, title: t('common.delete') });
    return h('li', { class: 'conv-item', dataset: { id: conversation.id, favorite: String(conversation.is_favorite) } },
      h('a', { class: 'conv-link', href: `#/chat/${conversation.id}` },
        h('span', { class: 'conv-title' }, conversation.title),
        h('span', { class: 'conv-meta' }, t('conv.messages', { n: conversation.message_count }), ' · ',
          when(conversation.updated_at, getLanguage()))),
      h('span', { class: 'conv-actions' }, favorite, remove));
  }

  async function refresh() {
    const mine = ++generation;
    const params = new URLSearchParams({ limit: '50' });
    if (search.value.trim()) params.set('q', search.value.trim());
    if (favorites.checked) params.set('favorites', 'true');
    try {
      const page = await api.get(`/conversations?${params}`);
      if (mine !== generation) return;
      fill(list, page.conversations.length ? page.conversations.map(item) : h('li', { class: 'muted empty' }, t('conv.none')));
      list.dataset.total = String(page.total);
    } catch (error) {
      if (mine === generation) say(status, describeError(error), 'error');
    }
  }

  markActive();
  window.addEventListener('hashchange', markActive);
  function markActive() {
    for (const link of list.querySelectorAll('a.conv-link')) {
      if (link.getAttribute('href') === location.hash) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  const el = h('section', { class: 'conversations', 'aria-labelledby': 'conv-heading' },
    h('h2', { id: 'conv-heading', class: 'side-title' }, t('conv.title')), form, status, list);
  return { el, refresh: () => refresh().then(markActive) };
}
