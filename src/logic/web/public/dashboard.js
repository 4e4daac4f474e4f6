// The dashboard: polls /dashboard/api/overview every second (the browser already holds the API
// credentials it used to open /dashboard) and draws it; retry and delete act on dead letters.
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const ago = (ms) => (ms === null || ms === undefined ? '–' : ms < 1000 ? `${ms} ms ago` : `${(ms / 1000).toFixed(1)} s ago`);
const history = [];
let last = null;

function chart(svg, values, color) {
  const max = Math.max(1, ...values);
  const step = 600 / Math.max(1, values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(115 - (v / max) * 105).toFixed(1)}`).join(' ');
  svg.innerHTML = `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points}"/><text x="4" y="14" fill="#8b98a5" font-size="12">max ${Math.round(max)}</text>`;
}

async function act(url, method) {
  const res = await fetch(url, { method });
  const body = await res.json().catch(() => ({}));
  $('state').textContent = res.ok ? `${body.task_id} ${body.status}` : `${res.status}: ${body.message ?? ''}`;
  await refresh();
}
window.retryTask = (id) => act(`/dashboard/api/dead/${id}/retry`, 'POST');
window.deleteTask = (id) => act(`/dashboard/api/dead/${id}`, 'DELETE');

async function refresh() {
  let o;
  try {
    const res = await fetch('/dashboard/api/overview');
    if (!res.ok) throw new Error(`${res.status}`);
    o = await res.json();
  } catch (err) {
    $('state').textContent = `unavailable (${err.message})`;
    $('state').className = 'state bad';
    return;
  }
  $('state').className = 'state ok';
  if (!$('state').textContent.includes(' ')) $('state').textContent = 'live';
  const rate = last ? Math.max(0, ((o.enqueued_total - last.enqueued_total) * 1000) / Math.max(1, o.now - last.now)) : 0;
  last = o;
  history.push({ rate, wait: o.oldest_waiting_age_ms ?? 0 });
  if (history.length > 120) history.shift();
  chart($('rateChart'), history.map((h) => h.rate), '#4aa3ff');
  chart($('waitChart'), history.map((h) => h.wait), '#d29922');

  const t = o.queues.tasks;
  $('queued').textContent = t.queued;
  $('oldest').textContent = o.oldest_waiting_age_ms === null ? 'nothing waiting' : `oldest waits ${o.oldest_waiting_age_ms} ms`;
  $('busy').textContent = `${t.processing} / ${t.delayed} / ${t.dead}`;
  $('scheduled').textContent = `${o.scheduled ?? 0} scheduled for later (delay_ms / run_at)`;
  $('webhooks').textContent = `webhooks: ${o.queues.results.queued} queued, ${o.queues.results.dead} failed for good`;
  $('rate').textContent = rate.toFixed(1);
  $('total').textContent = `${o.enqueued_total} enqueued since the start`;
  const most = Math.max(1, ...o.priorities.map((p) => p.queued));
  $('priorities').innerHTML = [...o.priorities].reverse().map((p) => `<tr><td>p${p.priority}</td><td style="width:70%"><div class="bar" style="width:${(100 * p.queued) / most}%"></div></td><td data-priority="${p.priority}">${p.queued}</td></tr>`).join('');
  $('comets').innerHTML = o.comets.map((c) => `<tr><td>${esc(c.id)}</td><td>${esc(c.ws_url)}</td><td>${c.connections}</td><td class="${c.heartbeat_age_ms > 5000 ? 'warn' : 'ok'}">${ago(c.heartbeat_age_ms)}</td></tr>`).join('') || '<tr><td class="dim" colspan="4">no comet alive</td></tr>';
  $('workers').innerHTML = o.workers.map((w) => `<tr><td>${esc(w.id)} <span class="dim">${esc(w.backend ?? '')}</span></td><td>${esc(w.consumers)} × ${esc(w.concurrency)}</td><td>${esc(w.inflight)}</td><td>${ago(w.seen_age_ms)}</td></tr>`).join('') || '<tr><td class="dim" colspan="4">no job process seen in 15 s</td></tr>';
  $('dead').innerHTML = o.dead.map((d) => `<tr data-task="${esc(d.id)}"><td>${esc(d.id)}</td><td>${esc(d.type)}</td><td>${d.priority}</td><td>${d.attempts}</td><td class="bad">${esc(d.error)}</td><td><button onclick="retryTask('${esc(d.id)}')">retry</button> <button class="danger" onclick="deleteTask('${esc(d.id)}')">delete</button></td></tr>`).join('') || '<tr><td class="dim" colspan="6">no dead letters</td></tr>';
  const limits = (l) => (l ? [l.concurrency !== undefined ? `${l.concurrency} at once` : '', l.rate ? `${l.rate.max} per ${l.rate.per_ms} ms` : ''].filter(Boolean).join(', ') : 'none');
  $('groups').innerHTML = (o.groups ?? []).map((g) => `<tr data-group="${esc(g.name)}"><td>${esc(g.name)}</td><td>${g.waiting}</td><td>${g.running}</td><td>${esc(limits(g.limits))}</td><td class="${g.blocked ? 'warn' : ''}">${g.blocked ? 'at its concurrency limit' : g.waiting > 0 ? 'in line' : '–'}</td></tr>`).join('') || '<tr><td class="dim" colspan="5">no groups (tasks without a group share one line)</td></tr>';
  $('schedules').innerHTML = (o.schedules ?? []).map((s) => `<tr data-schedule="${esc(s.name)}"><td>${esc(s.name)}</td><td>${s.cron !== undefined ? `cron ${esc(s.cron)} ${esc(s.tz)}` : `every ${esc(s.every_ms)} ms`}</td><td>${esc(s.catch_up)}</td><td>${esc(s.next_run_at ?? '–')}</td><td class="dim">${esc(JSON.stringify(s.task))}</td></tr>`).join('') || '<tr><td class="dim" colspan="5">no schedules (POST /schedules, pushline schedule add)</td></tr>';
  $('hooks').innerHTML = o.webhook_failures.map((h) => `<tr><td>${esc(h.id)}</td><td>${esc(h.hook_url)}</td><td>${h.attempts}</td><td class="bad">${esc(h.error)}</td></tr>`).join('') || '<tr><td class="dim" colspan="4">none</td></tr>';
}

// Task search: GET /tasks (the API route; same credentials), a page at a time, "more" follows next_cursor.
let searchQuery = '';
let searchCursor = null;
async function search(more) {
  if (!more) {
    const params = new URLSearchParams({ status: $('searchStatus').value, limit: '50' });
    for (const [name, id] of [['type', 'searchType'], ['group', 'searchGroup'], ['priority', 'searchPriority']]) if ($(id).value.trim()) params.set(name, $(id).value.trim());
    searchQuery = params.toString();
    searchCursor = null;
    $('searchResults').innerHTML = '';
  }
  const res = await fetch(`/tasks?${searchQuery}${searchCursor ? `&cursor=${encodeURIComponent(searchCursor)}` : ''}`);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    $('searchInfo').textContent = `${res.status}: ${body.message ?? ''}`;
    $('searchMore').hidden = true;
    return;
  }
  const when = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '–');
  $('searchResults').insertAdjacentHTML('beforeend', body.tasks.map((t) => `<tr data-found="${esc(t.task_id)}"><td><a href="/tasks/${encodeURIComponent(t.task_id)}" target="_blank">${esc(t.task_id)}</a></td><td>${esc(t.type)}</td><td>${esc(t.status)}${t.timed_out ? ' <span class="warn">timed out</span>' : ''}</td><td>${t.priority}</td><td>${t.attempts}</td><td>${when(t.created_at)}</td><td>${when(t.finished_at)}</td><td class="bad">${esc(t.error ?? '')}</td></tr>`).join(''));
  searchCursor = body.next_cursor;
  $('searchMore').hidden = !searchCursor;
  const shown = $('searchResults').children.length;
  $('searchInfo').textContent = `${shown} shown${searchCursor ? ', more to look through' : ''}`;
}
$('searchForm').addEventListener('submit', (e) => {
  e.preventDefault();
  void search(false);
});
$('searchMore').addEventListener('click', () => void search(true));

await refresh();
setInterval(refresh, 1000);
