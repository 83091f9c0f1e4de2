// The world as docs/PROTOCOL.md describes it, rebuilt from keyframes and
// deltas, and its checksum: FNV-1a 64 over the world's bincode encoding.
// A second implementation of the protocol, written from the doc alone.

// Checksums are u64 and do not fit a JS number: every "checksum" field is
// turned into a string before JSON.parse sees it. Inside a JSON string a
// quote is always escaped, so player text can never match this pattern.
const CHECKSUM = /"checksum":(\d+)/g;

/** Parses one JSON message, keeping checksums exact (as decimal strings). */
export function parseMessage(text) {
  return JSON.parse(text.replace(CHECKSUM, '"checksum":"$1"'));
}

const UTF8 = new TextEncoder();
const DIRS = { up: 0, down: 1, left: 2, right: 3 };
const MODES = { snake: 0, tron: 1 };

/** bincode 2, standard() config: varint integers, as the doc's checksum section says. */
class Encoder {
  constructor() {
    this.bytes = [];
  }
  varint(n) {
    const b = this.bytes;
    if (n < 251) {
      b.push(n);
    } else if (n < 0x10000) {
      b.push(251, n & 0xff, n >>> 8);
    } else if (n < 0x100000000) {
      b.push(252, n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
    } else {
      b.push(253);
      let v = BigInt(n);
      for (let i = 0; i < 8; i++) {
        b.push(Number(v & 0xffn));
        v >>= 8n;
      }
    }
  }
  bool(v) {
    this.bytes.push(v ? 1 : 0);
  }
  string(s) {
    const utf8 = UTF8.encode(s);
    this.varint(utf8.length);
    for (const x of utf8) this.bytes.push(x);
  }
  cells(list) {
    this.varint(list.length);
    for (const [x, y] of list) {
      this.varint(x);
      this.varint(y);
    }
  }
}

/** The world's canonical encoding (the bytes the checksum hashes). */
export function encodeWorld(w) {
  const e = new Encoder();
  e.varint(w.tick);
  e.varint(MODES[w.mode]);
  e.varint(w.round);
  e.varint(w.snakes.length);
  for (const s of w.snakes) {
    e.varint(s.id);
    e.string(s.name);
    e.cells(s.body);
    e.varint(DIRS[s.dir]);
    e.bool(s.alive);
    e.varint(s.respawn_in);
    e.bool(s.boost);
    e.bool(s.connected);
    const sc = s.score;
    for (const v of [sc.length, sc.kills, sc.deaths, sc.best, sc.wins]) e.varint(v);
  }
  e.cells(w.food);
  return e.bytes;
}

/**
 * FNV-1a 64 of `bytes`, as a decimal string (how frames carry it here).
 * The 64-bit state is four 16-bit limbs, so every product stays exact in a
 * double (BigInt per byte costs the page's main thread several times more).
 * Multiplying by the prime 0x100000001b3 = 2^40 + 0x1b3 is `h * 0x1b3`
 * plus `h` shifted up 40 bits (two limbs and 8 bits: `* 0x100`).
 */
export function fnv1a64(bytes) {
  // The offset basis 0xcbf29ce484222325, low limb first.
  let h0 = 0x2325;
  let h1 = 0x8422;
  let h2 = 0x9ce4;
  let h3 = 0xcbf2;
  for (const b of bytes) {
    h0 ^= b;
    const r0 = h0 * 0x1b3;
    const r1 = h1 * 0x1b3 + (r0 >>> 16);
    const r2 = h2 * 0x1b3 + h0 * 0x100 + (r1 >>> 16);
    const r3 = h3 * 0x1b3 + h1 * 0x100 + (r2 >>> 16);
    h0 = r0 & 0xffff;
    h1 = r1 & 0xffff;
    h2 = r2 & 0xffff;
    h3 = r3 & 0xffff;
  }
  return ((BigInt(h3) << 48n) | (BigInt(h2) << 32n) | (BigInt(h1) << 16n) | BigInt(h0)).toString();
}

/** The checksum of world `w`. */
export function checksum(w) {
  return fnv1a64(encodeWorld(w));
}

function byPos(a, b) {
  return a[0] - b[0] || a[1] - b[1];
}

function findSnake(w, id) {
  const s = w.snakes.find((x) => x.id === id);
  if (!s) throw new Error(`delta names snake ${id}, which is not in the world`);
  return s;
}

/** Applies delta `d` to world `w` in place (docs/PROTOCOL.md, "tick (delta)"). */
export function applyDelta(w, d) {
  for (const s of w.snakes) {
    if (!s.alive && s.respawn_in > 0) s.respawn_in -= 1;
  }
  if (d.round !== undefined && d.round !== null) w.round = d.round;
  if (d.removed && d.removed.length) {
    w.snakes = w.snakes.filter((s) => !d.removed.includes(s.id));
  }
  for (const s of d.snakes || []) {
    const i = w.snakes.findIndex((x) => x.id === s.id);
    if (i >= 0) w.snakes[i] = s;
    else {
      w.snakes.push(s);
      w.snakes.sort((a, b) => a.id - b.id);
    }
  }
  for (const m of d.moved || []) {
    const s = findSnake(w, m.id);
    const head = m.head || [];
    const trim = m.trim ?? (w.mode === 'snake' ? head.length : 0);
    if (trim > s.body.length) {
      throw new Error(`delta trims ${trim} cells from snake ${m.id}, which has ${s.body.length}`);
    }
    s.body.length -= trim;
    for (const c of head) s.body.unshift(c);
    for (const f of ['dir', 'alive', 'respawn_in', 'boost', 'connected']) {
      if (m[f] !== undefined) s[f] = m[f];
    }
  }
  for (const [id, score] of Object.entries(d.scores || {})) {
    findSnake(w, Number(id)).score = score;
  }
  if (d.food_removed && d.food_removed.length) {
    const gone = new Set(d.food_removed.map(([x, y]) => `${x},${y}`));
    w.food = w.food.filter(([x, y]) => !gone.has(`${x},${y}`));
  }
  if (d.food_added && d.food_added.length) {
    const have = new Set(w.food.map(([x, y]) => `${x},${y}`));
    for (const c of d.food_added) if (!have.has(`${c[0]},${c[1]}`)) w.food.push(c);
    w.food.sort(byPos);
  }
}

/**
 * One client's copy of the world. `keyframe` replaces it; `tick` applies a
 * delta and verifies the checksum. Both return what happened, so the caller
 * counts ticks, gaps and desyncs.
 */
export class World {
  constructor() {
    this.state = null;
  }

  /** A `snapshot` object: the whole world. */
  keyframe(snap) {
    this.state = snap.state;
    const ok = checksum(this.state) === snap.checksum;
    return ok ? 'ok' : 'desync';
  }

  /**
   * A `tick` object. 'ok', 'gap' (it does not follow the world we hold:
   * the caller needs a keyframe), 'stale' (already applied, e.g. repeated
   * after a resume) or 'desync' (the checksum differs; the world is dropped).
   */
  tick(t) {
    const w = this.state;
    if (!w) return 'gap';
    if (t.tick <= w.tick) return 'stale';
    if (t.tick !== w.tick + 1) return 'gap';
    try {
      applyDelta(w, t.delta || {});
    } catch (e) {
      this.state = null;
      return 'desync';
    }
    w.tick = t.tick;
    if (checksum(w) !== t.checksum) {
      this.state = null;
      return 'desync';
    }
    return 'ok';
  }
}
