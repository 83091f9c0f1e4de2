// The four transports, as a browser speaks them: EventSource (spectate),
// WebSocket (JSON), long-poll and short poll (fetch), over the session
// layer of docs/PROTOCOL.md (hello, welcome, token, seqs, acks, resume).
// Each link only moves messages: it hands every server message to
// `on.message(msg)` and reports its traffic to its meter.

import { parseMessage } from './world.js';
import { nowUs } from './meter.js';

/** The protocol this page speaks (docs/PROTOCOL.md). */
export const PROTOCOL_VERSION = 2;

const RETRY_MS = 1000;
const PING_MS = 1000;

function roomPath(room) {
  return `/rooms/${encodeURIComponent(room)}`;
}

function wait(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * SSE spectator: an EventSource, which reconnects by itself and sends
 * Last-Event-ID, so a dropped stream resumes after the last tick seen. If
 * the browser gives up (the server answered an error), the link opens a new
 * stream itself after a second. No upstream: RTT and clock offset come
 * from `GET /api/time` probes.
 */
export class SseLink {
  constructor(room, meter, on) {
    this.room = room;
    this.meter = meter;
    this.on = on;
    this.opens = 0;
    this.stopped = false;
  }

  start() {
    this.open();
    this.probe = setInterval(() => this.timeProbe(), PING_MS);
    this.timeProbe();
  }

  open() {
    const es = new EventSource(`${roomPath(this.room)}/events`);
    this.es = es;
    let opened = false;
    es.addEventListener('open', () => {
      // A second open of one EventSource is its own reconnect, resumed
      // with Last-Event-ID; a new EventSource starts with a welcome.
      if (opened) this.meter.onReopen();
      opened = true;
      this.meter.onTraffic(nowUs(), 0, 0, 1);
    });
    for (const name of ['welcome', 'tick', 'snapshot', 'chat', 'error']) {
      es.addEventListener(name, (e) => {
        if (e.data === undefined) {
          this.lost();
          return;
        }
        // What the page can see of the stream: the fields it was sent
        // (an estimate: the server's framing is not exposed).
        const seen = e.data.length + e.lastEventId.length + name.length + 20;
        this.meter.onTraffic(nowUs(), seen, 0, 0);
        const body = parseMessage(e.data);
        this.on.message({ [name]: body }, { reconnected: false });
      });
    }
  }

  lost() {
    if (this.stopped || this.es.readyState !== EventSource.CLOSED) return;
    // The browser will not retry (an HTTP error): open a new stream.
    this.es.close();
    setTimeout(() => {
      if (!this.stopped) this.open();
    }, RETRY_MS);
  }

  async timeProbe() {
    const sent = nowUs();
    try {
      const r = await fetch('/api/time', { cache: 'no-store' });
      const text = await r.text();
      const now = nowUs();
      this.meter.onTraffic(now, text.length, 0, 1);
      this.meter.onPong(now, sent, JSON.parse(text).server_time_us);
    } catch (e) {
      // A failed probe is a missing sample, nothing more.
    }
  }

  /** No upstream: SSE spectators cannot steer or chat. */
  input() {}
  chat() {}

  stop() {
    this.stopped = true;
    clearInterval(this.probe);
    if (this.es) this.es.close();
  }
}

/** What every playing link shares: the hello, input seqs, pings. */
class PlayLink {
  constructor(room, name, role, meter, on) {
    this.room = room;
    this.name = name;
    this.role = role;
    this.meter = meter;
    this.on = on;
    this.token = null;
    this.inputSeq = 0;
    this.stopped = false;
  }

  hello() {
    const hello = { version: PROTOCOL_VERSION, name: this.name, role: this.role };
    if (this.token) hello.token = this.token;
    return { hello };
  }

  /** Handles a server message the session layer needs, then passes it on. */
  received(msg) {
    if (msg.welcome) {
      if (msg.welcome.token) this.token = msg.welcome.token;
    }
    if (msg.pong) {
      this.meter.onPong(nowUs(), msg.pong.t, msg.pong.server_time_us);
    }
    this.on.message(msg);
  }

  input(dir, boost) {
    this.inputSeq += 1;
    const input = { seq: this.inputSeq, dir };
    if (boost) input.boost = true;
    this.meter.onInput(nowUs(), this.inputSeq);
    this.post({ input });
  }

  chat(text) {
    this.post({ chat: { text } });
  }

  ping() {
    this.post({ ping: { t: nowUs() } });
  }
}

/** Play over a WebSocket, JSON text frames; resumes with the token after a drop. */
export class WsLink extends PlayLink {
  start() {
    this.open();
    this.pinger = setInterval(() => this.ping(), PING_MS);
  }

  open() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}${roomPath(this.room)}/ws`);
    this.ws = ws;
    ws.addEventListener('open', () => {
      this.meter.onTraffic(nowUs(), 0, 0, 1);
      this.send(this.hello());
    });
    ws.addEventListener('message', (e) => {
      // Payload bytes plus a 2-byte frame header: an estimate.
      this.meter.onTraffic(nowUs(), e.data.length + 2, 0, 0);
      this.received(parseMessage(e.data));
    });
    ws.addEventListener('close', (e) => {
      if (this.stopped) return;
      this.on.status(`WebSocket closed (${e.code} ${e.reason || ''}); resuming`);
      setTimeout(() => {
        if (!this.stopped) this.open();
      }, RETRY_MS);
    });
  }

  send(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    const text = JSON.stringify(msg);
    this.ws.send(text);
    this.meter.onTraffic(nowUs(), 0, text.length + 6, 0);
    return true;
  }

  post(msg) {
    this.send(msg);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.pinger);
    if (this.ws) {
      this.send({ leave: {} });
      this.ws.close(1000);
    }
  }
}

/**
 * Play over plain HTTP: `long` holds each poll up to 25 s; short polls
 * with `wait=0` every `intervalMs`. Messages follow `after`/`next`, so a
 * lost answer is asked for again and nothing is lost or repeated; client
 * messages carry client seqs and are re-sent until the server's `applied`
 * covers them. A session the server no longer knows is joined again with
 * the token, which resumes the snake.
 */
export class HttpLink extends PlayLink {
  constructor(room, name, role, meter, on, long, intervalMs = 250) {
    super(room, name, role, meter, on);
    this.long = long;
    this.intervalMs = intervalMs;
    this.session = null;
    this.outbox = [];
    this.clientSeq = 0;
    this.sending = false;
  }

  start() {
    this.loop();
    this.pinger = setInterval(() => this.ping(), PING_MS);
  }

  async request(method, path, body, signal) {
    const headers = { 'content-type': 'application/json' };
    if (this.session) headers.authorization = `Bearer ${this.token}`;
    const text = body === undefined ? undefined : JSON.stringify(body);
    const r = await fetch(path, { method, headers, body: text, signal, cache: 'no-store' });
    const answer = await r.text();
    // Bodies only: the page cannot see request or response headers' bytes.
    this.meter.onTraffic(nowUs(), answer.length, text ? text.length : 0, 1);
    return [r.status, answer];
  }

  async join() {
    this.session = null;
    const [status, text] = await this.request('POST', `${roomPath(this.room)}/sessions`, this.hello());
    if (status === 201) {
      const msg = parseMessage(text);
      this.session = msg.welcome.session;
      this.after = 0;
      this.clientSeq = 0;
      this.outbox = [];
      this.received(msg);
      return;
    }
    if (status === 404 && this.token) this.token = null; // too late to resume: join afresh
    this.on.status(`joining failed (${status}): ${text}`);
    await wait(RETRY_MS);
  }

  async loop() {
    while (!this.stopped) {
      try {
        if (!this.session) {
          await this.join();
          continue;
        }
        const held = this.long ? 25 : 0;
        this.poll = new AbortController();
        const path = `${roomPath(this.room)}/sessions/${this.session}/poll?after=${this.after}&wait=${held}`;
        const [status, text] = await this.request('GET', path, undefined, this.poll.signal);
        if (status === 200) {
          const batch = parseMessage(text);
          for (const m of batch.messages) {
            if (m.seq > this.after) {
              this.after = m.seq;
              this.received(m.msg);
            }
          }
        } else if (status === 401 || status === 404) {
          this.on.status(`session ended (${status}); resuming`);
          this.session = null;
        } else {
          await wait(RETRY_MS);
        }
        if (!this.long) await wait(this.intervalMs);
      } catch (e) {
        if (this.stopped) return;
        await wait(RETRY_MS);
      }
    }
  }

  post(msg) {
    if (!this.session) return;
    this.clientSeq += 1;
    this.outbox.push({ seq: this.clientSeq, msg });
    this.flush();
  }

  async flush() {
    if (this.sending || !this.outbox.length || !this.session) return;
    this.sending = true;
    const session = this.session;
    try {
      const [status, text] = await this.request(
        'POST',
        `${roomPath(this.room)}/sessions/${session}/send`,
        { messages: this.outbox },
      );
      if (status === 200 && session === this.session) {
        const { applied } = JSON.parse(text);
        this.outbox = this.outbox.filter((m) => m.seq > applied);
      } else if (status !== 200) {
        await wait(RETRY_MS / 2);
      }
    } catch (e) {
      await wait(RETRY_MS / 2);
    }
    this.sending = false;
    if (!this.stopped && this.outbox.length && this.session) this.flush();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.pinger);
    if (this.poll) this.poll.abort();
    if (this.session) {
      const headers = { authorization: `Bearer ${this.token}` };
      fetch(`${roomPath(this.room)}/sessions/${this.session}`, { method: 'DELETE', headers }).catch(
        () => {},
      );
    }
  }
}
