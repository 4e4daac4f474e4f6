// The demo page: joins a room through the client library, shows its messages live with each
// one's end-to-end latency (send time in the message → receipt here), sends with a priority,
// lists who is online. Tokens come from /demo/api/token in dev mode only.
import { PushlineClient } from '/client.js';

const $ = (id) => document.getElementById(id);
const state = $('state');
const messages = $('messages');
let client = null;
let me = '';
let room = '';
let onlineTimer = null;
const latencies = [];

$('user').value = `guest_${Math.random().toString(36).slice(2, 7)}`;
const { dev } = await (await fetch('/demo/api/mode')).json();
$('mode').textContent = dev ? 'dev mode: the page gets its own token' : '';
if (!dev) {
  $('join').hidden = true;
  $('manual').hidden = false;
}

function line(text, cls = '') {
  const div = document.createElement('div');
  div.className = `msg ${cls}`;
  div.textContent = text;
  messages.append(div);
  messages.scrollTop = messages.scrollHeight;
  return div;
}

function show(m) {
  if (m.type === 'task_status') {
    line(`task ${m.task_id} ${m.status}${m.progress !== undefined ? ` ${Math.round(m.progress * 100)}%` : ''}`, 'status');
    return;
  }
  const div = document.createElement('div');
  div.className = `msg${m.userId === me ? ' mine' : ''}`;
  div.dataset.id = m.id ?? '';
  const who = document.createElement('span');
  who.className = 'who';
  who.textContent = m.userName ?? m.userId ?? 'system';
  const body = document.createElement('span');
  body.className = 'body';
  body.textContent = (m.messages ?? []).map((x) => x.content).join(' ') || m.content || JSON.stringify(m);
  const meta = document.createElement('span');
  meta.className = 'meta';
  const ms = typeof m.ts === 'number' ? Date.now() - m.ts : null;
  if (ms !== null) latencies.push(ms);
  meta.textContent = `${m.priority ? `p${m.priority} · ` : ''}${m.seq ? `#${m.seq} · ` : ''}${ms !== null ? `${ms} ms` : ''}`;
  div.append(meta, who, body);
  messages.append(div);
  messages.scrollTop = messages.scrollHeight;
  if (latencies.length) {
    const sorted = [...latencies].sort((a, b) => a - b);
    $('latency').textContent = `end-to-end: last ${ms ?? '-'} ms, median ${sorted[Math.floor(sorted.length / 2)]} ms over ${sorted.length}`;
  }
}

async function refreshOnline() {
  if (!dev || !room) return;
  const res = await fetch(`/demo/api/online?roomId=${encodeURIComponent(room)}`);
  if (!res.ok) return;
  const { users } = await res.json();
  const rows = users.map((u) => `<tr><td>${u.userId === me ? '<b>' : ''}${escape(u.userId)}${u.userId === me ? '</b> (you)' : ''}</td><td class="dim">${u.comets.map(escape).join(', ')}</td></tr>`);
  $('online').innerHTML = rows.join('') || '<tr><td class="dim">nobody</td></tr>';
}
const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function connect(connection) {
  client?.close();
  messages.replaceChildren();
  $('roomName').textContent = room;
  client = new PushlineClient({
    connection,
    onMessage: show,
    onState: (s, detail) => {
      state.textContent = `${s}${detail ? ` (${detail})` : ''}`;
      state.className = `state ${s === 'open' ? 'ok' : s === 'closed' ? 'bad' : 'warn'}`;
      for (const id of ['text', 'priority', 'sendButton']) $(id).disabled = s !== 'open';
    },
    onError: (code, message) => line(`${code}: ${message}`, 'status'),
  });
  client.connect();
  clearInterval(onlineTimer);
  onlineTimer = setInterval(refreshOnline, 2000);
  setTimeout(refreshOnline, 300);
}

$('join').addEventListener('submit', (e) => {
  e.preventDefault();
  me = $('user').value.trim();
  room = $('room').value.trim();
  connect(async () => {
    const res = await fetch('/demo/api/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: me, roomId: room, userName: me }) });
    const body = await res.json();
    if (!res.ok) throw new Error(body.message);
    $('cometInfo').textContent = `connected through ${body.comet}`;
    return { url: body.comet, token: body.token };
  });
});

$('manual').addEventListener('submit', (e) => {
  e.preventDefault();
  const token = $('token').value.trim();
  const url = $('comet').value.trim();
  try {
    const claims = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    me = claims.sub;
    room = claims.room;
  } catch {
    line('that does not look like a pushline token', 'status');
    return;
  }
  connect(async () => ({ url, token }));
});

$('send').addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('text').value.trim();
  if (!text || !client) return;
  $('text').value = '';
  try {
    await client.send(text, Number($('priority').value));
  } catch (err) {
    line(`not sent: ${err.message}`, 'status');
  }
});
