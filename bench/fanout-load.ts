/**
 * bench:fanout's other process: the loopback receivers (healthy ones answer 200 at once, the dead one never answers)
 * and the load generator (signed GHL webhooks to the bridge at a steady rate). Prints {"control": url, "publicKey": …}.
 * Control: POST /receivers {healthy, dead} → {urls}; POST /run {target, rate, seconds, phase} → offered count;
 * GET /stats?phase= → {latencies: ms from send to receipt at healthy receivers, deliveries, offered}.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';

const ed = generateKeyPairSync('ed25519');
const publicKey = ed.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

interface Phase {
  sentAt: Map<string, number>;
  latencies: number[];
  /** From the bridge storing the webhook (the envelope's receivedAt) to receipt: the delivery part of the latency. */
  fromStored: number[];
  seen: Set<string>;
  deliveries: number;
  offered: number;
  accepted: number;
}
const phases = new Map<string, Phase>();
const phaseOf = (p: string) => {
  let v = phases.get(p);
  if (!v)
    phases.set(
      p,
      (v = {
        sentAt: new Map(),
        latencies: [],
        fromStored: [],
        seen: new Set(),
        deliveries: 0,
        offered: 0,
        accepted: 0,
      }),
    );
  return v;
};
const servers: http.Server[] = [];

async function receiver(dead: boolean, n: number): Promise<string> {
  const s = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (dead) return; // never answers: the bridge's timeout ends the attempt
      const at = performance.now();
      try {
        const b = JSON.parse(Buffer.concat(chunks).toString()) as {
          id: string;
          receivedAt: string;
          data: { phase: string; seq: string };
        };
        const ph = phaseOf(b.data.phase);
        ph.deliveries++;
        const key = `${n}:${b.id}`;
        if (!ph.seen.has(key)) {
          ph.seen.add(key);
          const t0 = ph.sentAt.get(b.data.seq);
          if (t0 !== undefined) ph.latencies.push(at - t0);
          ph.fromStored.push(Date.now() - Date.parse(b.receivedAt));
        }
      } catch {
        /* not ours */
      }
      res.writeHead(200).end('ok');
    });
  });
  s.keepAliveTimeout = 120_000;
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  servers.push(s);
  return `http://127.0.0.1:${(s.address() as { port: number }).port}/hook`;
}

function post(target: string, body: string): Promise<number> {
  return new Promise((resolve) => {
    const u = new URL(target);
    const req = http.request(
      {
        method: 'POST',
        hostname: u.hostname,
        port: u.port,
        path: u.pathname,
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'x-ghl-signature': sign(null, Buffer.from(body), ed.privateKey).toString('base64'),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

async function run(o: { target: string; rate: number; seconds: number; phase: string }): Promise<number> {
  const ph = phaseOf(o.phase);
  const total = Math.round(o.rate * o.seconds);
  const start = performance.now();
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / o.rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const seq = `${o.phase}-${i}`;
    const body = JSON.stringify({
      type: 'ContactUpdate',
      locationId: `loc_${i % 10}`,
      id: `c_${i % 500}`,
      firstName: 'Bench',
      phase: o.phase,
      seq,
      timestamp: new Date().toISOString(),
      webhookId: `${seq}-${Math.random().toString(36).slice(2)}`,
    });
    ph.sentAt.set(seq, performance.now());
    ph.offered++;
    const p = post(`${o.target}/webhooks/ghl`, body).then((st) => {
      if (st === 200) ph.accepted++;
      inflight.delete(p);
    });
    inflight.add(p);
  }
  await Promise.all(inflight);
  return total;
}

const control = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>) : {};
      let out: unknown;
      if (url.pathname === '/receivers') {
        const urls: string[] = [];
        let n = 0;
        for (let i = 0; i < Number(body.healthy); i++) urls.push(await receiver(false, n++));
        const dead: string[] = [];
        for (let i = 0; i < Number(body.dead); i++) dead.push(await receiver(true, n++));
        out = { healthy: urls, dead };
      } else if (url.pathname === '/run') out = { offered: await run(body as never) };
      else if (url.pathname === '/stats') {
        const ph = phaseOf(url.searchParams.get('phase') ?? '');
        out = {
          latencies: ph.latencies,
          fromStored: ph.fromStored,
          deliveries: ph.deliveries,
          offered: ph.offered,
          accepted: ph.accepted,
        };
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out ?? null));
    })();
  });
});
control.listen(0, '127.0.0.1');
await once(control, 'listening');
process.stdout.write(
  JSON.stringify({ control: `http://127.0.0.1:${(control.address() as { port: number }).port}`, publicKey }) + '\n',
);
process.on('SIGTERM', () => {
  for (const s of servers) s.closeAllConnections();
  process.exit(0);
});
