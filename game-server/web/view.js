// Drawing: the arena on a <canvas>, the scoreboard, sparklines. Player
// text only ever goes in as textContent or canvas text, never as HTML.

const COLORS = ['#e6194b', '#3cb44b', '#ffe119', '#4363d8', '#f58231', '#911eb4', '#46f0f0', '#f032e6',
  '#bcf60c', '#fabebe', '#008080', '#e6beff', '#9a6324', '#fffac8', '#aaffc3', '#ffd8b1'];

/** A snake's colour, by id (the same on every page). */
export function colorOf(id) {
  return COLORS[id % COLORS.length];
}

/** `tag` with class `cls` and text `text` (as text, never HTML). */
export function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

/** Draws `world` on `canvas` over the map of `welcome`. */
export function drawArena(canvas, map, world, me) {
  const cell = Math.max(4, Math.floor(Math.min(900 / map.width, 600 / map.height)));
  if (canvas.width !== map.width * cell || canvas.height !== map.height * cell) {
    canvas.width = map.width * cell;
    canvas.height = map.height * cell;
  }
  const g = canvas.getContext('2d');
  g.fillStyle = '#111';
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.fillStyle = '#555';
  map.rows.forEach((row, y) => {
    for (let x = 0; x < row.length; x++) {
      if (row[x] === '#') g.fillRect(x * cell, y * cell, cell, cell);
    }
  });
  if (!world) return;
  g.fillStyle = '#fff';
  for (const [x, y] of world.food) {
    g.beginPath();
    g.arc((x + 0.5) * cell, (y + 0.5) * cell, cell / 3, 0, 2 * Math.PI);
    g.fill();
  }
  for (const s of world.snakes) {
    g.fillStyle = colorOf(s.id);
    g.globalAlpha = s.connected ? 1 : 0.5;
    s.body.forEach(([x, y], i) => {
      const inset = i === 0 ? 0 : 1;
      g.fillRect(x * cell + inset, y * cell + inset, cell - 2 * inset, cell - 2 * inset);
    });
    g.globalAlpha = 1;
    if (s.body.length) {
      const [x, y] = s.body[0];
      g.font = `${Math.max(10, cell)}px sans-serif`;
      g.fillStyle = s.id === me ? '#fff' : colorOf(s.id);
      g.fillText(s.name, (x + 1) * cell, y * cell);
    }
  }
}

/** Fills `tbody` with the scoreboard of `world`, best first. */
export function drawScores(tbody, world, me) {
  const rows = [...world.snakes].sort((a, b) => b.score.length - a.score.length || a.id - b.id);
  tbody.replaceChildren(
    ...rows.map((s) => {
      const tr = el('tr', s.id === me ? 'me' : '');
      const name = el('td', `name c${s.id % COLORS.length}`, s.name);
      tr.append(name);
      for (const v of [s.score.length, s.score.kills, s.score.deaths, s.score.best, s.score.wins]) {
        tr.append(el('td', 'num', v));
      }
      return tr;
    }),
  );
}

/** A sparkline of `values` (nulls are gaps) on a small canvas. */
export function drawSparkline(canvas, values) {
  const g = canvas.getContext('2d');
  g.clearRect(0, 0, canvas.width, canvas.height);
  const nums = values.filter((v) => v !== null && v !== undefined);
  if (!nums.length) return;
  // Frame age can be below zero (the clock offset is an estimate).
  const min = Math.min(...nums, 0);
  const span = Math.max(...nums, 1) - min;
  const step = canvas.width / Math.max(values.length - 1, 1);
  g.strokeStyle = '#6cf';
  g.beginPath();
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || v === undefined) {
      pen = false;
      return;
    }
    const x = i * step;
    const y = canvas.height - 1 - ((v - min) / span) * (canvas.height - 2);
    if (pen) g.lineTo(x, y);
    else g.moveTo(x, y);
    pen = true;
  });
  g.stroke();
}
