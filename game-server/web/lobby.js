// The lobby: the server's rooms, refreshed every two seconds, with links
// to watch or play each over every transport.

import { el } from './view.js';

const $ = (id) => document.getElementById(id);
const state = { rooms: [], refreshes: 0, error: null };

function roomLink(room, transport, label, extra = {}) {
  const a = el('a', 'join', label);
  a.href = `/web/room?${new URLSearchParams({ room, transport, ...extra })}`;
  return a;
}

async function refresh() {
  try {
    const r = await fetch('/api/rooms', { cache: 'no-store' });
    state.rooms = await r.json();
    state.refreshes += 1;
    state.error = null;
  } catch (e) {
    state.error = 'the server does not answer';
  }
  $('rooms').replaceChildren(
    ...state.rooms.map((r) => {
      const tr = el('tr');
      for (const v of [r.id, r.mode, r.map, `${r.players}/${r.max_players}`, r.spectators, r.tick_rate, r.tick]) {
        tr.append(el('td', '', v));
      }
      const links = el('td', 'links');
      links.append(
        roomLink(r.id, 'sse', 'watch'),
        roomLink(r.id, 'ws', 'play (WebSocket)'),
        roomLink(r.id, 'longpoll', 'long-poll'),
        roomLink(r.id, 'poll', 'short poll'),
        roomLink(r.id, 'sse', 'compare', { compare: '1' }),
      );
      tr.append(links);
      return tr;
    }),
  );
  $('lobby-status').textContent = state.error || `${state.rooms.length} rooms`;
}

async function create() {
  const body = { id: $('new-id').value.trim() || undefined, mode: $('new-mode').value };
  const r = await fetch('/api/rooms', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await r.json();
  $('create-status').textContent = r.ok ? `created ${answer.id}` : answer.error;
  refresh();
}

const host = location.host;
$('terminal').textContent =
  `curl -N http://${host}/rooms/lobby/watch\n` +
  `curl -N http://${host}/rooms/lobby/events\n` +
  `cargo run --release -- --server http://${host}\n` +
  `curl http://${host}/          # the usage page, with every endpoint`;
$('create').addEventListener('click', create);
refresh();
setInterval(refresh, 2000);

/** The automation hook (docs/PROTOCOL.md, "Browser pages"). */
window.tickwire = {
  stats() {
    return { page: 'lobby', rooms: state.rooms.map((r) => r.id), refreshes: state.refreshes, error: state.error };
  },
};
