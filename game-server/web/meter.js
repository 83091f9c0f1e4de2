// The lag meter of one transport, with the definitions of the README's
// "What the lag numbers mean". Sans-IO: every method takes the time (Unix
// microseconds) from its caller, so it holds no clock of its own.

/** This machine's clock, Unix microseconds (high resolution). */
export function nowUs() {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

const WINDOW_US = 10_000_000; // figures are medians (jitter: the mean) of the last 10 s
const HISTORY = 60; // sparkline points (one a second)

function median(values) {
  if (!values.length) return null;
  const v = [...values].sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
}

/** Samples of one figure, kept for the median window. */
class Series {
  constructor() {
    this.samples = []; // [t_us, value_ms]
  }
  add(t, v) {
    this.samples.push([t, v]);
  }
  recent(now) {
    while (this.samples.length && this.samples[0][0] < now - WINDOW_US) this.samples.shift();
    return this.samples.map((s) => s[1]);
  }
  median(now) {
    return median(this.recent(now));
  }
  mean(now) {
    const v = this.recent(now);
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  }
}

/** The figures and counters of one transport. */
export class Meter {
  constructor(transport) {
    this.transport = transport;
    this.tickIntervalMs = 50;
    this.counters = {
      ticks: 0, // frames applied with a verified checksum (keyframes included)
      desyncs: 0, // checksum or delta mismatches
      gaps: 0, // ticks that did not follow the world held (a keyframe was needed)
      resyncs: 0, // keyframes other than the one after each welcome
      reconnects: 0, // welcomes after the first, plus resumed SSE streams
      welcomes: 0,
      inputs: 0,
      requests: 0,
      bytes_in: 0,
      bytes_out: 0,
    };
    this.lastTick = null;
    this.rtt = new Series();
    this.age = new Series();
    this.input = new Series();
    this.jitter = new Series();
    this.pongs = []; // [rtt_us, offset_us], the last 8
    this.offsetUs = null;
    this.lastArrival = null; // [t_us, tick]
    this.pending = new Map(); // input seq -> sent at
    this.history = { rtt: [], age: [], input: [], jitter: [], bytes: [] };
    this.second = { t: null, bytes: 0, requests: 0 };
    this.rates = { bytes_per_s: 0, requests_per_s: 0 };
  }

  /** Bytes and requests the transport moved (as far as a page can see). */
  onTraffic(now, bytesIn, bytesOut, requests) {
    this.counters.bytes_in += bytesIn;
    this.counters.bytes_out += bytesOut;
    this.counters.requests += requests;
    this.second.bytes += bytesIn + bytesOut;
    this.second.requests += requests;
    this.roll(now);
  }

  /** A round trip: a ping sent at `sent`, answered at `now`, stamped `serverUs`. */
  onPong(now, sent, serverUs) {
    const rtt = now - sent;
    this.rtt.add(now, rtt / 1000);
    // NTP-style: the server's stamp is taken to be halfway through.
    this.pongs.push([rtt, (sent + now) / 2 - serverUs]);
    if (this.pongs.length > 8) this.pongs.shift();
    this.offsetUs = this.pongs.reduce((a, b) => (b[0] < a[0] ? b : a))[1];
  }

  /** A welcome; `counts` false where the transport counted the reconnect itself. */
  onWelcome(counts = true) {
    if (this.counters.welcomes > 0 && counts) this.counters.reconnects += 1;
    this.counters.welcomes += 1;
    this.keyframeExpected = true;
  }

  /** A frame (keyframe or tick) arrived at `now`; `result` is the World's verdict. */
  onFrame(now, frame, keyframe, result) {
    if (keyframe) {
      if (!this.keyframeExpected) this.counters.resyncs += 1;
      this.keyframeExpected = false;
    }
    if (result === 'desync') this.counters.desyncs += 1;
    if (result === 'gap') this.counters.gaps += 1;
    if (result !== 'ok') return;
    this.counters.ticks += 1;
    this.lastTick = frame.tick;
    if (this.offsetUs !== null) {
      this.age.add(now, (now - (frame.server_time_us + this.offsetUs)) / 1000);
    }
    if (this.lastArrival) {
      const [t0, tick0] = this.lastArrival;
      const expected = (frame.tick - tick0) * this.tickIntervalMs;
      this.jitter.add(now, Math.abs((now - t0) / 1000 - expected));
    }
    this.lastArrival = [now, frame.tick];
    if (frame.ack) {
      for (const [seq, sent] of this.pending) {
        if (seq > frame.ack) continue;
        this.input.add(now, (now - sent) / 1000);
        this.pending.delete(seq);
      }
    }
  }

  /** An SSE stream that resumed after a drop (EventSource sent Last-Event-ID). */
  onReopen() {
    this.counters.reconnects += 1;
  }

  onInput(now, seq) {
    this.counters.inputs += 1;
    this.pending.set(seq, now);
  }

  /** Every second: a sparkline point per figure, and the per-second rates. */
  roll(now) {
    if (this.second.t === null) this.second.t = now;
    const elapsed = now - this.second.t;
    if (elapsed < 1_000_000) return;
    this.rates.bytes_per_s = Math.round((this.second.bytes * 1e6) / elapsed);
    this.rates.requests_per_s = Math.round((this.second.requests * 1e7) / elapsed) / 10;
    this.second = { t: now, bytes: 0, requests: 0 };
    const f = this.figures(now);
    for (const k of ['rtt', 'age', 'input', 'jitter']) {
      const h = this.history[k];
      h.push(f[`${k === 'age' ? 'frame_age' : k === 'input' ? 'input_latency' : k}_ms`]);
      if (h.length > HISTORY) h.shift();
    }
    this.history.bytes.push(this.rates.bytes_per_s);
    if (this.history.bytes.length > HISTORY) this.history.bytes.shift();
  }

  /** The figures (medians of the last 10 s, in ms; null: none yet). */
  figures(now) {
    const round = (v) => (v === null ? null : Math.round(v * 10) / 10);
    return {
      rtt_ms: round(this.rtt.median(now)),
      offset_ms: this.offsetUs === null ? null : round(this.offsetUs / 1000),
      frame_age_ms: round(this.age.median(now)),
      input_latency_ms: round(this.input.median(now)),
      jitter_ms: round(this.jitter.mean(now)),
    };
  }

  /** Plain JSON for `window.tickwire.stats()`. */
  stats(now) {
    this.roll(now);
    return {
      transport: this.transport,
      tick: this.lastTick,
      ...this.figures(now),
      ...this.rates,
      ...this.counters,
    };
  }
}
