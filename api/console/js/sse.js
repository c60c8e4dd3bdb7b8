// Server-Sent Events over fetch: `EventSource` cannot send an Authorization header, so `/chat/stream` is read
// with `fetch` and this parser (the WHATWG event-stream format: `id:`, `event:`, multi-line `data:`, `retry:`,
// comments and keep-alives, LF, CR or CRLF line ends). A dropped stream is resumed with `Last-Event-ID`.

import { authFetch, ApiError } from './api.js';

/** Turns chunks of an event stream into `{event, data, id}` objects passed to `onEvent`. */
export class SseParser {
  constructor(onEvent, onComment) {
    this.onEvent = onEvent;
    this.onComment = onComment || (() => {});
    this.buffer = '';
    this.lastEventId = '';
    this.retry = null;
    this.started = false;
    this.skipLineFeed = false;
    this.reset();
  }

  reset() {
    this.eventType = '';
    this.dataLines = [];
  }

  /** Feeds decoded text; complete lines are handled at once, the rest waits for the next chunk. */
  push(chunk) {
    let text = chunk;
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    // A CR that ended the previous chunk may be the first half of a CRLF.
    if (this.skipLineFeed && text.startsWith('\n')) text = text.slice(1);
    if (text.length > 0) this.skipLineFeed = false;
    text = this.buffer + text;
    const lineEnd = /\r\n|\r|\n/g;
    let start = 0;
    let match;
    while ((match = lineEnd.exec(text)) !== null) {
      this.line(text.slice(start, match.index));
      start = lineEnd.lastIndex;
      if (match[0] === '\r' && start === text.length) this.skipLineFeed = true;
    }
    this.buffer = text.slice(start);
  }

  /** The stream ended: an event without its closing blank line is dropped, as the format says. */
  end() {
    this.buffer = '';
    this.reset();
  }

  line(line) {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) {
      this.onComment(line.slice(1));
      return;
    }
    const colon = line.indexOf(':');
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (name) {
      case 'event': this.eventType = value; break;
      case 'data': this.dataLines.push(value); break;
      case 'id': if (!value.includes('\0')) this.lastEventId = value; break;
      case 'retry': if (/^\d+$/.test(value)) this.retry = Number(value); break;
      default: break; // unknown fields are ignored
    }
  }

  dispatch() {
    if (this.dataLines.length === 0) {
      this.reset();
      return;
    }
    const event = { event: this.eventType || 'message', data: this.dataLines.join('\n'), id: this.lastEventId };
    this.reset();
    this.onEvent(event);
  }
}

const MAX_RESUMES = 8;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON
  }
  const error = body && body.error;
  return new ApiError(response.status, error ? error.code : 'INTERNAL_ERROR', error ? error.message : response.statusText,
    error ? error.details : {});
}

/**
 * Asks a question (`params` are the query parameters of `/chat/stream`) and calls `onEvent(name, data)` for each
 * event until `done` or `error`. A stream that breaks, or that the server ends with `event: reconnect` (a node
 * shutting down), is resumed from the last event id; `onStatus('reconnecting', {attempt})` and
 * `onStatus('live')` tell the user. `onStatus('open', {conversationId})` comes with the response headers.
 */
export async function streamChat(params, { onEvent, onStatus = () => {}, signal } = {}) {
  let lastEventId = '';
  let failures = 0;
  for (;;) {
    const resuming = lastEventId !== '';
    const headers = { Accept: 'text/event-stream' };
    if (resuming) headers['Last-Event-ID'] = lastEventId;
    const path = resuming ? '/chat/stream' : `/chat/stream?${new URLSearchParams(params)}`;
    let finished = false;
    let serverAskedToReconnect = false;
    try {
      const response = await authFetch(path, { headers, signal, cache: 'no-store' });
      if (!response.ok) {
        const error = await errorOf(response);
        // A failed resume on a node that is going away may work on the next try; other refusals are final.
        if (!resuming || error.status < 500) throw error;
        throw Object.assign(new Error(error.message), { name: 'NetworkError' });
      }
      onStatus(resuming ? 'live' : 'open', { conversationId: response.headers.get('x-conversation-id') });
      const parser = new SseParser((event) => {
        if (event.event === 'reconnect') {
          serverAskedToReconnect = true;
          return;
        }
        if (event.id) lastEventId = event.id;
        failures = 0;
        let data;
        try {
          data = JSON.parse(event.data);
        } catch {
          data = { message: event.data };
        }
        if (event.event === 'done' || event.event === 'error') finished = true;
        onEvent(event.event, data);
      });
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value);
        if (finished || serverAskedToReconnect) break;
      }
      parser.end();
      reader.cancel().catch(() => {});
      if (finished) return;
    } catch (error) {
      if (signal && signal.aborted) return;
      if (error.name !== 'NetworkError' && !(error instanceof TypeError)) throw error;
      if (!lastEventId) throw error;
    }
    if (signal && signal.aborted) return;
    if (!lastEventId) throw Object.assign(new Error('stream ended before any event'), { name: 'NetworkError' });
    failures += 1;
    if (failures > MAX_RESUMES) throw Object.assign(new Error('stream lost'), { name: 'StreamLost' });
    onStatus('reconnecting', { attempt: failures });
    await sleep(serverAskedToReconnect ? 100 : Math.min(250 * 2 ** failures, 4000));
  }
}
