/** The dashboard page. Static: it contains no data; it reads the JSON API with the key the operator types. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>ghl-bridge · ops</title>
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
 header{background:#1d2330;color:#fff;padding:12px 20px;display:flex;gap:16px;align-items:center}
 header h1{font-size:16px;margin:0} header .meta{opacity:.7}
 main{padding:20px;display:grid;gap:16px;grid-template-columns:repeat(auto-fit,minmax(420px,1fr))}
 section{background:#fff;border-radius:8px;padding:14px 16px;box-shadow:0 1px 2px #0001}
 h2{font-size:14px;margin:0 0 10px} table{border-collapse:collapse;width:100%} td,th{text-align:left;padding:4px 6px;border-bottom:1px solid #eee;vertical-align:top}
 .pill{display:inline-block;padding:1px 8px;border-radius:10px;background:#eef;margin:0 6px 6px 0}
 .bad{background:#fde2e2} .ok{background:#e2f6e6} .err{color:#a11;font-size:12px;word-break:break-all}
 #login{max-width:420px;margin:80px auto;background:#fff;padding:20px;border-radius:8px}
 input{width:100%;padding:8px;box-sizing:border-box} button{padding:6px 12px;margin-top:8px}
</style></head>
<body>
<div id="login"><h2>ghl-bridge ops dashboard</h2><p>Admin key (ADMIN_API_KEY):</p>
<input id="key" type="password" autocomplete="off"><button id="go">Open</button><p id="loginerr" class="err"></p></div>
<div id="app" hidden><header><h1>ghl-bridge</h1><span class="meta" id="meta"></span><span style="flex:1"></span><button id="refresh">Refresh</button></header>
<main>
 <section><h2>Jobs</h2><div id="jobs"></div><h2 style="margin-top:12px">Dead jobs</h2><div id="dead"></div></section>
 <section><h2>Installations</h2><div id="inst"></div></section>
 <section><h2>Channels</h2><div id="chan"></div></section>
 <section><h2>Recent webhooks</h2><div id="hooks"></div></section>
 <section><h2>Unsigned deliveries</h2><div id="prov"></div><h2 style="margin-top:12px">Rejected (not sent)</h2><div id="rej"></div></section>
</main></div>
<script>
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
let key = sessionStorage.getItem('ghlBridgeKey') || '';
async function api(path, opts = {}) {
  const r = await fetch(path, { ...opts, headers: { authorization: 'Bearer ' + key, 'content-type': 'application/json' } });
  if (r.status === 401) { sessionStorage.removeItem('ghlBridgeKey'); throw new Error('wrong admin key'); }
  if (!r.ok) throw new Error((await r.json()).message || r.statusText);
  return r.json();
}
function table(rows, cols) {
  if (!rows.length) return '<p>none</p>';
  return '<table><tr>' + cols.map((c) => '<th>' + esc(c[0]) + '</th>').join('') + '</tr>' +
    rows.map((r) => '<tr>' + cols.map((c) => '<td>' + c[1](r) + '</td>').join('') + '</tr>').join('') + '</table>';
}
async function load() {
  const o = await api('/admin/api/overview');
  $('login').hidden = true; $('app').hidden = false;
  $('meta').textContent = o.mode + ' · ' + o.store + ' · ' + new Date(o.generatedAt).toLocaleTimeString();
  $('jobs').innerHTML = Object.entries(o.jobs.byState).map(([k, v]) => '<span class="pill ' + (k === 'dead' && v ? 'bad' : '') + '">' + esc(k) + ' ' + v + '</span>').join('');
  $('dead').innerHTML = table(o.jobs.dead, [['id', (j) => j.id], ['kind', (j) => esc(j.kind)], ['attempts', (j) => j.attempts + '/' + j.maxAttempts],
    ['error', (j) => '<span class="err">' + esc((j.lastError || '').slice(0, 200)) + '</span>'], ['', (j) => '<button data-retry="' + j.id + '">retry</button>']]) +
    (o.jobs.dead.length ? '<button id="retryall">retry all dead</button>' : '');
  $('inst').innerHTML = Object.entries(o.installations.byStatus).map(([k, v]) => '<span class="pill ' + (k === 'active' ? 'ok' : 'bad') + '">' + esc(k) + ' ' + v + '</span>').join('') +
    table(o.installations.needingAttention, [['installation', (i) => esc(i.id)], ['status', (i) => esc(i.status)], ['reason', (i) => '<span class="err">' + esc(i.reason) + '</span>']]);
  $('chan').innerHTML = table(o.channels, [['location', (c) => esc(c.locationId)], ['kind', (c) => esc(c.kind)], ['enabled', (c) => c.enabled ? 'yes' : 'no'],
    ['last catch-up', (c) => c.catchup && c.catchup.lastRunAt ? esc(new Date(c.catchup.lastRunAt).toLocaleTimeString()) + ' · caught up ' + c.catchup.caughtUp + ' · expired ' + c.catchup.expired + (c.catchup.error ? ' <span class="err">' + esc(c.catchup.error.slice(0, 200)) + '</span>' : '') : 'never']]);
  $('hooks').innerHTML = table(o.webhooks.recent, [['id', (e) => e.id], ['type', (e) => esc(e.type)], ['status', (e) => esc(e.status)], ['location', (e) => esc(e.location_id)], ['received', (e) => esc(new Date(e.received_at).toLocaleTimeString())]]);
  const p = o.provider;
  $('prov').innerHTML = p ? '<p>Delivery URL <code>' + esc(p.deliveryUrl) + '</code></p><span class="pill">confirmation ' + esc(p.mode) + '</span><span class="pill">awaiting ' + p.awaiting + '</span><span class="pill ' + (p.rejected.length ? 'bad' : '') + '">rejected ' + p.rejected.length + '</span>' : '<p>provider module not loaded</p>';
  $('rej').innerHTML = table(p ? p.rejected : [], [['message', (r) => esc(r.messageId)], ['location', (r) => esc(r.locationId)], ['reason', (r) => '<span class="err">' + esc(r.reason) + '</span>'], ['at', (r) => esc(new Date(r.at).toLocaleTimeString())]]);
  document.querySelectorAll('[data-retry]').forEach((b) => b.onclick = () => api('/admin/api/jobs/retry', { method: 'POST', body: JSON.stringify({ ids: [Number(b.dataset.retry)] }) }).then(load));
  const all = $('retryall'); if (all) all.onclick = () => api('/admin/api/jobs/retry', { method: 'POST', body: JSON.stringify({ allDead: true }) }).then(load);
}
$('go').onclick = () => { key = $('key').value.trim(); sessionStorage.setItem('ghlBridgeKey', key); load().catch((e) => { $('loginerr').textContent = e.message; }); };
$('refresh').onclick = () => load().catch((e) => alert(e.message));
if (key) load().catch(() => {});
</script></body></html>`;
