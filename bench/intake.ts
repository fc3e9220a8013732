/**
 * npm run bench:intake — webhook intake throughput and latency: autocannon, 50 connections,
 * 10 s, ~1 KB Ed25519-signed ContactCreate payloads (unique webhookId each), against
 *   (a) a bare Fastify route answering 200,
 *   (b) verify-only: the intake's raw-body parser + signature check + JSON.parse, no storage,
 *   (c) the real intake (verify + durable group-commit write of event + dispatch job) on
 *       PGlite (on disk) and on PostgreSQL.
 * Each server runs in its own child process so the load generator does not share its CPU.
 * Dispatch workers are off during (c) (WORKER_CONCURRENCY=0): the figure is the intake path;
 * pass --workers N to run N worker slots at the same time.
 *
 * The real intake runs once per log level in --log-levels (default "info-all,info,warn"): `info` is the shipped default
 * (webhook requests counted in metrics, not logged one by one), `info-all` adds LOG_HOT_PATH_REQUESTS=true (two pino
 * lines per request on stdout, which the parent keeps draining like a log shipper would), `warn` is quiet.
 *
 *   npm run bench:intake -- --duration 10 --connections 50 --stores pglite,postgres --log-levels info-all,info,warn
 */
import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import pg from 'pg';
import { createBridge, type BridgeModule } from '../src/app.js';
import { loadConfig } from '../src/infra/config/index.js';
import { createLogger } from '../src/infra/log/logger.js';
import { GHL_ED25519_PUBLIC_KEY_PEM, GHL_RSA_PUBLIC_KEY_PEM, loadPublicKeys } from '../src/platform/webhooks/keys.js';
import { WebhookVerifier } from '../src/platform/webhooks/verify.js';
import { webhooksModule, webhooksService } from '../src/platform/webhooks/index.js';
import { PG_URL, postgresAvailable, startChild, stopChild } from './common.js';

const { values } = parseArgs({
  options: {
    serve: { type: 'string' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    stores: { type: 'string', default: 'pglite,postgres' },
    only: { type: 'string' },
    'cpu-prof': { type: 'string' },
    workers: { type: 'string', default: '0' },
    'log-levels': { type: 'string', default: 'info-all,info,warn' },
    'log-level': { type: 'string', default: 'warn' },
  },
});

// ---------------------------------------------------------------- server side (child process)

async function serve(mode: string, publicPem: string): Promise<void> {
  const print = (url: string) => process.stdout.write(JSON.stringify({ url }) + '\n');
  if (mode === 'bare' || mode === 'verify') {
    const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
    const verifier = new WebhookVerifier({
      ed25519Keys: loadPublicKeys([GHL_ED25519_PUBLIC_KEY_PEM, publicPem], 'ed25519', 'ed'),
      rsaKeys: loadPublicKeys([GHL_RSA_PUBLIC_KEY_PEM], 'rsa', 'rsa'),
      acceptRsa: true,
    });
    await app.register(async (s) => {
      s.removeAllContentTypeParsers();
      s.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
      s.post('/webhooks/ghl', async (req, reply) => {
        if (mode === 'verify') {
          const raw = req.body as Buffer;
          const v = verifier.verify(raw, req.headers);
          if (!v.ok) return reply.code(401).send('{"ok":false}');
          JSON.parse(raw.toString('utf8'));
        }
        return reply.code(200).type('application/json').send('{"ok":true}');
      });
    });
    print(await app.listen({ port: 0, host: '127.0.0.1' }));
    return;
  }
  const kind = mode === 'intake-postgres' ? 'postgres' : 'pglite';
  const level = values['log-level']!;
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const dir = kind === 'pglite' ? mkdtempSync(join(tmpdir(), 'ghl-bridge-bench-')) : undefined;
  const config = loadConfig({
    LOG_LEVEL: level === 'info-all' ? 'info' : level,
    LOG_HOT_PATH_REQUESTS: level === 'info-all' ? 'true' : 'false',
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_SCHEMA: schema,
    WORKER_CONCURRENCY: values.workers,
    WEBHOOK_MAX_BACKLOG: '10000000',
    ...(kind === 'postgres' ? { DATABASE_URL: PG_URL } : { DATA_DIR: dir }),
  });
  const handlers: BridgeModule = {
    name: 'bench',
    init: (ctx) => void webhooksService(ctx).on('ContactCreate', async () => {}),
  };
  const bridge = await createBridge(config, {
    log: createLogger({ level: config.LOG_LEVEL }),
    modules: [webhooksModule({ extraEd25519Keys: [publicPem] }), handlers],
  });
  print(await bridge.listen(0));
  process.on('SIGTERM', () => {
    void (async () => {
      await bridge.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
      if (kind === 'postgres') {
        const c = new pg.Client({ connectionString: PG_URL });
        await c.connect();
        await c.query(`drop schema if exists "${schema}" cascade`);
        await c.end();
      }
      process.exit(0);
    })();
  });
}

// ---------------------------------------------------------------- load side (parent)

interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
  total: number;
}

async function startServer(
  mode: string,
  pubPem: string,
  level = 'warn',
): Promise<{ child: ChildProcess; url: string }> {
  const prof = values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['cpu-prof']}`] : [];
  const { child, ready } = await startChild<{ url: string }>(
    [...prof, 'bench/intake.ts', '--serve', mode, '--workers', values.workers!, '--log-level', level],
    { ...process.env, BENCH_PUBLIC_KEY: pubPem },
  );
  return { child, url: ready.url };
}

async function load(name: string, url: string, bodies: string[], sigs: string[]): Promise<Row> {
  let i = 0;
  const result = await autocannon({
    url: `${url}/webhooks/ghl`,
    connections: Number(values.connections),
    duration: Number(values.duration),
    requests: [
      {
        method: 'POST',
        setupRequest: (req) => {
          const k = i++ % bodies.length;
          return {
            ...req,
            body: bodies[k]!,
            headers: { 'content-type': 'application/json', 'x-ghl-signature': sigs[k]! },
          };
        },
      },
    ],
  });
  if (i > bodies.length)
    console.error(`note: ${name} used ${i} requests > ${bodies.length} distinct payloads; the rest were duplicates`);
  return {
    name,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx + result.errors + result.timeouts,
    total: result.requests.total,
  };
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [line(headers), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const pubPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  // Enough distinct payloads for ~20k req/s over the run; each ~1 KB, signed like GHL signs.
  const n = Math.max(50_000, Number(values.duration) * 20_000);
  const bodies: string[] = [];
  const sigs: string[] = [];
  const filler = 'x'.repeat(560);
  for (let k = 0; k < n; k++) {
    const body = JSON.stringify({
      type: 'ContactCreate',
      locationId: `loc_${k % 20}`,
      id: `contact_${k}`,
      firstName: 'Bench',
      lastName: `Contact ${k}`,
      email: `bench${k}@example.com`,
      phone: `+1555${String(k).padStart(7, '0')}`,
      tags: ['bench', 'load'],
      source: 'bench',
      dateAdded: new Date().toISOString(),
      customFields: [{ id: 'f1', value: filler }],
      timestamp: new Date().toISOString(),
      webhookId: randomUUID(),
    });
    bodies.push(body);
    sigs.push(sign(null, Buffer.from(body), privateKey).toString('base64'));
  }
  console.log(
    `payload ${Buffer.byteLength(bodies[0]!)} bytes; ${values.connections} connections, ${values.duration} s each; dispatch workers: ${values.workers}`,
  );

  const modes: Array<[string, string, string]> = [
    ['bare', '(a) bare Fastify 200', 'warn'],
    ['verify', '(b) verify-only', 'warn'],
  ];
  const stores = values.stores!.split(',');
  const levels = values['log-levels']!.split(',');
  const pgUp = stores.includes('postgres') && (await postgresAvailable());
  if (stores.includes('postgres') && !pgUp) console.error(`PostgreSQL at ${PG_URL} not reachable: skipping it`);
  for (const level of levels) {
    const tag =
      level === 'info'
        ? 'log info (shipped default)'
        : level === 'info-all'
          ? 'log info + every request'
          : `log ${level}`;
    if (stores.includes('pglite')) modes.push(['intake-pglite', `intake, PGlite (disk), ${tag}`, level]);
    if (pgUp) modes.push(['intake-postgres', `intake, PostgreSQL, ${tag}`, level]);
  }
  const rows: Row[] = [];
  for (const [mode, name, level] of modes.filter(([m]) => !values.only || values.only.split(',').includes(m))) {
    const { child, url } = await startServer(mode, pubPem, level);
    try {
      // Short warm-up (JIT, connection pool) with distinct payloads not reused later.
      await autocannon({ url: `${url}/healthz`, connections: 10, duration: 1 });
      rows.push(await load(name, url, bodies, sigs));
      if (mode.startsWith('intake')) {
        const m = await (await fetch(`${url}/metrics`)).text();
        const v = (k: string) => Number(new RegExp(`^${k} (\\S+)$`, 'm').exec(m)?.[1] ?? NaN);
        const batches = v('ghl_bridge_webhook_commit_batch_size_count');
        console.log(
          `  ${name}: ${batches} commits, ${(v('ghl_bridge_webhook_commit_batch_size_sum') / batches).toFixed(1)} events/commit, ` +
            `${((v('ghl_bridge_webhook_commit_seconds_sum') / batches) * 1000).toFixed(1)} ms/commit`,
        );
      }
    } finally {
      await stopChild(child);
    }
    console.log(`  done: ${name}`);
  }
  const verifyRps = rows.find((r) => r.name.startsWith('(b)'))?.rps ?? NaN;
  if (values.only)
    console.log(rows.map((r) => `${r.name}: ${r.rps.toFixed(0)} req/s p50 ${r.p50} p99 ${r.p99}`).join('\n'));
  console.log(
    '\n' +
      table(
        ['server', 'req/s', 'p50 ms', 'p99 ms', 'requests', 'non-2xx/errors', 'vs verify-only'],
        rows.map((r) => [
          r.name,
          r.rps.toFixed(0),
          String(r.p50),
          String(r.p99),
          String(r.total),
          String(r.non2xx),
          `${((r.rps / verifyRps) * 100).toFixed(0)}%`,
        ]),
      ),
  );
  console.log('\ntargets: intake on PostgreSQL ≥ 60% of verify-only req/s, p99 ≤ 25 ms');
}

if (values.serve) await serve(values.serve, process.env.BENCH_PUBLIC_KEY ?? '');
else await main();
