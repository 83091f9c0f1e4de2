// The room page: one client on the chosen transport (watch over SSE, play
// over WebSocket, long-poll or short poll), and on demand the compare
// panel, which opens all four transports to the room at once. Exposes
// window.tickwire.stats() (docs/PROTOCOL.md, "Browser pages").

import { World } from './world.js';
import { Meter, nowUs } from './meter.js';
import { SseLink, WsLink, HttpLink } from './links.js';
import { el, drawArena, drawScores, drawSparkline } from './view.js';

const params = new URLSearchParams(location.search);
const room = params.get('room') || 'lobby';
const TRANSPORTS = ['sse', 'ws', 'longpoll', 'poll'];
const LABELS = { sse: 'SSE (EventSource)', ws: 'WebSocket', longpoll: 'long-poll', poll: 'short poll' };
const chosen = TRANSPORTS.includes(params.get('transport')) ? params.get('transport') : 'sse';
const pollInterval = Math.max(50, Number(params.get('poll_ms')) || 250);
const DIRS = ['up', 'down', 'left', 'right'];
const REVERSE = { up: 'down', down: 'up', left: 'right', right: 'left' };

const $ = (id) => document.getElementById(id);

/** One connection to the room: its link, meter and world. */
class Client {
  constructor(transport, name, brain) {
    this.transport = transport;
    this.meter = new Meter(transport);
    this.world = new World();
    this.map = null;
    this.me = null;
    this.brain = brain;
    this.status = 'connecting';
    this.resyncAsked = false;
    this.lastInput = 0;
    this.chat = [];
    const on = { message: (m) => this.handle(m), status: (t) => (this.status = t) };
    const role = transport === 'sse' ? 'spectator' : 'player';
    if (transport === 'sse') this.link = new SseLink(room, this.meter, on);
    else if (transport === 'ws') this.link = new WsLink(room, name, role, this.meter, on);
    else this.link = new HttpLink(room, name, role, this.meter, on, transport === 'longpoll', pollInterval);
  }

  handle(msg) {
    const now = nowUs();
    if (msg.welcome) {
      const w = msg.welcome;
      this.map = w.map;
      this.me = w.player_id;
      this.meter.tickIntervalMs = 1000 / w.tick_rate;
      this.meter.onWelcome();
      this.status = w.resumed ? 'resumed' : 'joined';
      // The SSE welcome carries its keyframe; the others send it next.
      if (w.snapshot) this.frame(now, w.snapshot, true);
    } else if (msg.snapshot) {
      this.frame(now, msg.snapshot, true);
    } else if (msg.tick) {
      this.frame(now, msg.tick, false);
    } else if (msg.chat) {
      this.chat.push(msg.chat);
      if (this.chat.length > 50) this.chat.shift();
      ui.chatChanged(this);
    } else if (msg.error) {
      this.status = `${msg.error.code}: ${msg.error.message}`;
    }
  }

  frame(now, f, keyframe) {
    const result = keyframe ? this.world.keyframe(f) : this.world.tick(f);
    this.meter.onFrame(now, f, keyframe, result);
    if (keyframe) this.resyncAsked = false;
    if ((result === 'gap' || result === 'desync') && !this.resyncAsked) {
      // Lost track of the world: ask for a keyframe (SSE: a fresh stream).
      this.resyncAsked = true;
      if (this.transport === 'sse') {
        this.link.stop();
        this.link.stopped = false;
        this.link.start();
      } else {
        this.link.post({ resync: {} });
      }
    }
    if (result === 'ok') {
      if (this.brain) this.brain(this);
      ui.frameChanged(this);
    }
  }

  /** This client's snake, if it has one in the world. */
  snake() {
    const w = this.world.state;
    return w && this.me !== null ? w.snakes.find((s) => s.id === this.me) : undefined;
  }

  stats() {
    return { ...this.meter.stats(nowUs()), status: this.status, player_id: this.me };
  }
}

function step([x, y], dir, map) {
  const w = map.width;
  const h = map.height;
  if (dir === 'up') return [x, (y + h - 1) % h];
  if (dir === 'down') return [x, (y + 1) % h];
  if (dir === 'left') return [(x + w - 1) % w, y];
  return [(x + 1) % w, y];
}

/**
 * The compare panel's players: keep going where it is free, turn away
 * from walls and bodies, and turn somewhere free every 1.5 s so there is
 * always an input in flight to measure (any input also starts a waiting
 * snake and brings a parked one back).
 */
function survival(c) {
  const me = c.snake();
  const w = c.world.state;
  if (!me || !c.map) return;
  const now = performance.now();
  const due = now - c.lastInput > 1500;
  if (!me.alive) {
    if (me.respawn_in === 0 && due) {
      c.lastInput = now;
      c.link.input(me.dir, false);
    }
    return;
  }
  const taken = new Set();
  for (const s of w.snakes) for (const [x, y] of s.body) taken.add(`${x},${y}`);
  const free = (d) => {
    const [x, y] = step(me.body[0], d, c.map);
    return c.map.rows[y][x] !== '#' && !taken.has(`${x},${y}`);
  };
  if (free(me.dir) && !due) return;
  const options = DIRS.filter((d) => d !== REVERSE[me.dir] && free(d));
  const dir = options.length ? options[Math.floor(Math.random() * options.length)] : me.dir;
  c.lastInput = now;
  c.link.input(dir, false);
}

/** What the page shows, redrawn from the clients' state. */
const ui = {
  main: null,
  compare: null,
  pending: false,

  frameChanged(c) {
    if (c !== this.viewed() || this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      const v = this.viewed();
      if (!v.map) return;
      drawArena($('arena'), v.map, v.world.state, this.main.me);
      if (v.world.state) drawScores($('scores'), v.world.state, this.main.me);
      $('tick').textContent = v.world.state ? v.world.state.tick : '-';
    });
  },

  /** The client whose world the arena shows: the main one. */
  viewed() {
    return this.main;
  },

  chatChanged(c) {
    if (c !== this.main) return;
    $('chat-log').replaceChildren(
      ...c.chat.map((m) => {
        const li = el('li');
        li.append(el('span', 'from', m.from), el('span', 'text', m.text));
        return li;
      }),
    );
  },

  figuresRow(label, value, unit, history) {
    const tr = el('tr');
    tr.append(el('th', '', label), el('td', 'num', value === null ? '-' : `${value}${unit}`));
    const td = el('td');
    if (history) {
      const spark = el('canvas', 'spark');
      spark.width = 120;
      spark.height = 20;
      drawSparkline(spark, history);
      td.append(spark);
    }
    tr.append(td);
    return tr;
  },

  /** The net panel of the main client. */
  drawNet() {
    const c = this.main;
    const s = c.stats();
    const h = c.meter.history;
    $('net').replaceChildren(
      this.figuresRow('RTT', s.rtt_ms, ' ms', h.rtt),
      this.figuresRow('frame age', s.frame_age_ms, ' ms', h.age),
      this.figuresRow('input latency', s.input_latency_ms, ' ms', h.input),
      this.figuresRow('jitter', s.jitter_ms, ' ms', h.jitter),
      this.figuresRow('bytes/s (est.)', s.bytes_per_s, '', h.bytes),
      this.figuresRow('req/s', s.requests_per_s, '', null),
      this.figuresRow('clock offset', s.offset_ms, ' ms', null),
    );
    $('counters').textContent =
      `${LABELS[c.transport]} · ${c.status} · ticks ${s.ticks} · desyncs ${s.desyncs} · ` +
      `resyncs ${s.resyncs} · reconnects ${s.reconnects} · gaps ${s.gaps}`;
  },

  /** The compare panel: the four transports side by side. */
  drawCompare() {
    const table = $('compare-table');
    if (!this.compare) {
      table.replaceChildren();
      return;
    }
    const stats = TRANSPORTS.map((t) => this.compare[t].stats());
    const head = el('tr');
    head.append(el('th', '', ''), ...TRANSPORTS.map((t) => el('th', '', LABELS[t])));
    const rows = [
      ['RTT ms', 'rtt_ms'],
      ['frame age ms', 'frame_age_ms'],
      ['input ms', 'input_latency_ms'],
      ['jitter ms', 'jitter_ms'],
      ['bytes/s (est.)', 'bytes_per_s'],
      ['req/s', 'requests_per_s'],
      ['offset ms', 'offset_ms'],
      ['tick', 'tick'],
      ['desyncs', 'desyncs'],
      ['resyncs', 'resyncs'],
      ['reconnects', 'reconnects'],
    ].map(([label, key]) => {
      const tr = el('tr');
      tr.append(el('th', '', label), ...stats.map((s) => el('td', 'num', s[key] === null ? '-' : s[key])));
      return tr;
    });
    const sparks = el('tr');
    sparks.append(
      el('th', '', 'frame age'),
      ...TRANSPORTS.map((t) => {
        const td = el('td');
        const spark = el('canvas', 'spark');
        spark.width = 120;
        spark.height = 20;
        drawSparkline(spark, this.compare[t].meter.history.age);
        td.append(spark);
        return td;
      }),
    );
    table.replaceChildren(head, ...rows, sparks);
  },
};

function startCompare() {
  if (ui.compare) return;
  ui.compare = {};
  for (const t of TRANSPORTS) {
    const c = new Client(t, `web-${t}`, t === 'sse' ? null : survival);
    ui.compare[t] = c;
    c.link.start();
  }
  $('compare').classList.remove('hidden');
  $('compare-toggle').textContent = 'close compare';
}

function stopCompare() {
  if (!ui.compare) return;
  for (const t of TRANSPORTS) ui.compare[t].link.stop();
  ui.compare = null;
  $('compare').classList.add('hidden');
  $('compare-toggle').textContent = 'compare all four transports';
}

const KEYS = {
  ArrowUp: 'up', ArrowDown: 'down', ArrowLeft: 'left', ArrowRight: 'right',
  w: 'up', s: 'down', a: 'left', d: 'right', W: 'up', S: 'down', A: 'left', D: 'right',
};

function setup() {
  $('room-name').textContent = room;
  const name = params.get('name') || `web-${Math.floor(Math.random() * 1000)}`;
  $('transport').value = chosen;
  $('name').value = name;
  ui.main = new Client(chosen, name, null);
  ui.main.link.start();
  if (chosen === 'sse') $('chat-input').placeholder = 'SSE has no upstream: pick a playing transport to chat';

  let boost = false;
  document.addEventListener('keydown', (e) => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    const me = ui.main.snake();
    if (KEYS[e.key]) {
      e.preventDefault();
      ui.main.link.input(KEYS[e.key], boost);
    } else if (e.key === ' ') {
      e.preventDefault();
      boost = !boost;
      ui.main.link.input(me ? me.dir : 'up', boost);
    } else if (e.key === 'Enter') {
      e.preventDefault();
      $('chat-input').focus();
    }
  });
  $('chat-input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      const text = e.target.value.trim();
      if (text) ui.main.link.chat(text);
      e.target.value = '';
      e.target.blur();
    } else if (e.key === 'Escape') {
      e.target.blur();
    }
  });
  $('go').addEventListener('click', () => {
    const q = new URLSearchParams({ room, transport: $('transport').value, name: $('name').value });
    location.search = q.toString();
  });
  $('compare-toggle').addEventListener('click', () => (ui.compare ? stopCompare() : startCompare()));
  if (params.get('compare') === '1') startCompare();
  setInterval(() => {
    ui.drawNet();
    ui.drawCompare();
  }, 250);
  window.addEventListener('pagehide', () => {
    ui.main.link.stop();
    stopCompare();
  });
}

/** The automation hook: the page's figures and counters as plain JSON. */
window.tickwire = {
  stats() {
    const compare = ui.compare
      ? Object.fromEntries(TRANSPORTS.map((t) => [t, ui.compare[t].stats()]))
      : null;
    return {
      page: 'room',
      room,
      main: ui.main ? ui.main.stats() : null,
      compare,
      chat_lines: ui.main ? ui.main.chat.length : 0,
    };
  },
  startCompare,
  stopCompare,
};

setup();
