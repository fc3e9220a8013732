/**
 * Load generator for bench/capacity.ts's intake baseline, in its own process so autocannon does not share the
 * measured bridge's CPU. argv: a JSON file {url, connections, duration, bodies, sigs} (signed Delivery-URL payloads,
 * one distinct messageId each); stdout: one JSON line with the autocannon result.
 */
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as {
  url: string;
  connections: number;
  duration: number;
  bodies: string[];
  sigs: string[];
};
let i = 0;
const r = await autocannon({
  url: job.url,
  connections: job.connections,
  duration: job.duration,
  requests: [
    {
      method: 'POST',
      setupRequest: (req) => {
        const k = i++ % job.bodies.length;
        return {
          ...req,
          body: job.bodies[k]!,
          headers: { 'content-type': 'application/json', 'x-ghl-signature': job.sigs[k]! },
        };
      },
    },
  ],
});
console.log(
  JSON.stringify({
    rps: r.requests.average,
    total: r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx + r.errors + r.timeouts,
    duplicates: Math.max(0, i - job.bodies.length),
  }),
);
