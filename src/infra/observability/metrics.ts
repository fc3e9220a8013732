import client from 'prom-client';

/**
 * One registry per running bridge (not prom-client's global one), so several bridges in one
 * process — tests, the sandbox — keep separate figures. Modules add their own metrics to it.
 */
export interface Metrics {
  registry: client.Registry;
  httpRequests: client.Counter<'method' | 'route' | 'status'>;
  httpDuration: client.Histogram<'method' | 'route'>;
  jobDuration: client.Histogram<'kind' | 'outcome'>;
  jobFailures: client.Counter<'kind' | 'outcome'>;
}

export function createMetrics(): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'ghl_bridge_process_' });
  return {
    registry,
    httpRequests: new client.Counter({
      name: 'ghl_bridge_http_requests_total',
      help: 'HTTP requests served, by route and status code',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpDuration: new client.Histogram({
      name: 'ghl_bridge_http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    jobDuration: new client.Histogram({
      name: 'ghl_bridge_job_duration_seconds',
      help: 'Job handler duration by kind and outcome',
      labelNames: ['kind', 'outcome'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60],
      registers: [registry],
    }),
    jobFailures: new client.Counter({
      name: 'ghl_bridge_job_failures_total',
      help: 'Job runs that did not complete (retry, dead, paused), by kind',
      labelNames: ['kind', 'outcome'],
      registers: [registry],
    }),
  };
}
