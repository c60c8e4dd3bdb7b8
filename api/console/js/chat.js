// The chat view: ask, watch the stages, stop, continue a conversation.

import { h, fill, select, say } from './dom.js';
import { t, describeError } from './i18n.js';
import { api } from './api.js';
import { streamChat } from './sse.js';
import { AnswerCard, storedAnswer } from './answer.js';

function userBubble(text) {
  return h('div', { class: 'bubble user' }, h('p', null, text));
}

/** The chat view for conversation `conversationId` (none: a new conversation). */
export function chatView(ctx, conversationId) {
  const developer = ctx.config.view_mode === 'developer';
  const log = h('div', { class: 'chat-log', id: 'chat-log' });
  const heading = h('h2', { class: 'chat-title', id: 'chat-title' }, t('chat.new'));
  const notice = h('p', { class: 'notice-line', role: 'alert' });
  const question = h('textarea', { id: 'question', name: 'query', rows: 3, required: true, placeholder: t('chat.placeholder'),
    maxlength: 4000 });
  const modelSelect = select({ id: 'chat-model', name: 'model' },
    ctx.models.map((m) => [m.id, m.name]), ctx.config.default_model_id);
  const connectionSelect = select({ id: 'chat-connection', name: 'connection' },
    ctx.connections.map((c) => [c.id, c.name]), ctx.config.default_connection_id);
  const askButton = h('button', { type: 'submit', class: 'btn primary', id: 'ask' }, t('chat.ask'));
  const stopButton = h('button', { type: 'button', class: 'btn danger', id: 'stop', hidden: true, onclick: stop }, t('chat.stop'));
  const form = h('form', { class: 'ask-form', id: 'ask-form', onsubmit: (event) => { event.preventDefault(); ask(); } },
    h('label', { class: 'sr-only', for: 'question' }, t('chat.question')),
    question,
    h('div', { class: 'ask-bar' },
      h('label', { class: 'inline' }, h('span', null, t('chat.model')), modelSelect),
      h('label', { class: 'inline' }, h('span', null, t('chat.connection')), connectionSelect),
      h('span', { class: 'spacer' }),
      stopButton, askButton));
  question.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  let current = conversationId || null;
  let running = null;

  const el = h('section', { class: 'view chat-view', 'aria-labelledby': 'chat-title' },
    h('div', { class: 'view-head' }, heading,
      h('a', { class: 'btn', href: '#/chat', id: 'new-chat', onclick: (event) => {
        // Already at #/chat (no hashchange): start afresh all the same.
        if (location.hash === '#/chat') {
          event.preventDefault();
          window.dispatchEvent(new HashChangeEvent('hashchange'));
        }
      } }, t('chat.new'))),
    notice, log, form);

  if (ctx.models.length === 0) say(notice, t('chat.no_model'), 'warn');
  else if (ctx.connections.length === 0) say(notice, t('chat.no_connection'), 'warn');

  function showEmpty() {
    if (log.childElementCount === 0) log.append(h('p', { class: 'empty muted' }, t('chat.empty')));
  }

  async function load(id) {
    fill(log, h('p', { class: 'muted' }, t('common.loading')));
    try {
      const conversation = await api.get(`/conversations/${encodeURIComponent(id)}`);
      fill(heading, t('chat.continuing', { title: conversation.title }));
      if (conversation.connection_id && ctx.connections.some((c) => c.id === conversation.connection_id)) {
        connectionSelect.value = conversation.connection_id;
      }
      fill(log, conversation.messages.map((m) => (m.role === 'user' ? userBubble(m.content) : storedAnswer(m, developer))));
    } catch (error) {
      fill(log);
      current = null;
      say(notice, describeError(error), 'error');
    }
    showEmpty();
  }

  function setRunning(on) {
    askButton.disabled = on;
    stopButton.hidden = !on;
    stopButton.disabled = true;
    question.disabled = on;
    el.classList.toggle('running', on);
  }

  function learnConversation(id) {
    if (!running || !id) return;
    running.conversationId = id;
    stopButton.disabled = false;
  }

  async function ask() {
    const text = question.value.trim();
    if (!text || running) return;
    say(notice, '');
    log.querySelector('.empty')?.remove();
    const card = new AnswerCard({ developer });
    log.append(userBubble(text), card.el);
    const params = { query: text, language: ctx.config.language };
    if (modelSelect.value) params.model = modelSelect.value;
    if (connectionSelect.value) params.connection_id = connectionSelect.value;
    if (current) params.conversation_id = current;
    const controller = new AbortController();
    running = { controller, conversationId: current, finished: null };
    setRunning(true);
    learnConversation(current);
    question.value = '';
    card.el.scrollIntoView({ block: 'nearest' });
    try {
      await streamChat(params, {
        signal: controller.signal,
        onStatus: (kind, vars) => {
          if (kind === 'open') learnConversation(vars.conversationId);
          card.setStatus(kind, vars);
        },
        onEvent: (name, data) => {
          if (name === 'progress') {
            learnConversation(data.conversation_id);
            card.stage(data);
          } else if (name === 'result') {
            card.result(data);
          } else if (name === 'visualization') {
            card.chart(data);
          } else if (name === 'error') {
            running.finished = 'error';
            card.error(data);
          } else if (name === 'done') {
            running.finished = 'done';
            if (!current) fill(heading, text);
            current = data.conversation_id;
            card.done();
          }
        },
      });
    } catch (error) {
      running.finished = 'error';
      card.error({ code: error.code || error.name, message: describeError(error) });
    } finally {
      const answered = running.finished === 'done';
      running = null;
      setRunning(false);
      question.focus();
      if (answered && current) {
        history.replaceState(null, '', `#/chat/${current}`);
        ctx.refreshConversations();
      }
    }
  }

  async function stop() {
    if (!running || !running.conversationId) return;
    stopButton.disabled = true;
    try {
      await api.post('/chat/stop', { conversation_id: running.conversationId });
    } catch (error) {
      say(notice, describeError(error), 'error');
      stopButton.disabled = false;
    }
  }

  if (current) load(current);
  else showEmpty();
  queueMicrotask(() => question.focus());
  return el;
}
