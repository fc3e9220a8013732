import type { Command } from 'commander';
import { WEBHOOK_STATUSES, type WebhookStatus } from '../../platform/webhooks/tables.js';
import { listEvents, replayEvents } from '../../platform/webhooks/replay.js';
import { configOrExit, fail, openStore } from '../common.js';

function parseSince(v: string | undefined): Date | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  if (Number.isNaN(d.getTime()))
    fail(new Error(`--since expects an ISO date/time, e.g. 2026-07-01T12:00:00Z (got "${v}")`));
  return d;
}

export function registerWebhooksCommand(program: Command): void {
  const wh = program.command('webhooks').description('inspect and replay stored GHL webhook events');
  wh.command('list')
    .description('list stored webhook events, newest first')
    .option('--status <status>', `only this status (${WEBHOOK_STATUSES.join(', ')})`)
    .option('--dead', 'only dead events (same as --status dead)')
    .option('--type <type>', 'only this event type (e.g. ContactCreate, INSTALL, ProviderOutboundMessage)')
    .option('--since <iso>', 'only events received at or after this time')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON lines')
    .action(
      async (o: { status?: string; dead?: boolean; type?: string; since?: string; limit: string; json?: boolean }) => {
        const status = (o.dead ? 'dead' : o.status) as WebhookStatus | undefined;
        if (status && !WEBHOOK_STATUSES.includes(status))
          fail(new Error(`--status must be one of ${WEBHOOK_STATUSES.join(', ')}`));
        const since = parseSince(o.since);
        const config = configOrExit();
        const store = await openStore(config);
        try {
          const rows = await listEvents(store.db, {
            ...(status ? { status } : {}),
            ...(o.type ? { type: o.type } : {}),
            ...(since ? { since } : {}),
            limit: Number(o.limit) || 50,
          });
          if (o.json) for (const r of rows) console.log(JSON.stringify(r));
          else if (!rows.length) console.log('no webhook events');
          else
            for (const r of rows)
              console.log(
                [
                  r.id,
                  r.received_at.toISOString(),
                  r.status,
                  r.source,
                  r.type ?? '(none)',
                  r.location_id ?? '-',
                  r.reason ? r.reason.slice(0, 160) : '',
                ].join('\t'),
              );
        } finally {
          await store.close();
        }
      },
    );
  wh.command('replay')
    .description('run stored events through their handlers again (the running bridge picks them up)')
    .argument('[ids...]', 'event ids')
    .option('--since <iso>', 'events received at or after this time')
    .option('--type <type>', 'events of this type')
    .option('--dead', 'dead events only')
    .action(async (ids: string[], o: { since?: string; type?: string; dead?: boolean }) => {
      const nums = ids.map(Number);
      if (nums.some((n) => !Number.isSafeInteger(n) || n <= 0)) fail(new Error('event ids are positive whole numbers'));
      const since = parseSince(o.since);
      if (!nums.length && !since && !o.type && !o.dead)
        fail(new Error('name event ids or use --since, --type or --dead'));
      const config = configOrExit();
      const store = await openStore(config);
      try {
        const r = await replayEvents(store.db, {
          ...(nums.length ? { ids: nums } : {}),
          ...(since ? { since } : {}),
          ...(o.type ? { type: o.type } : {}),
          ...(o.dead ? { dead: true } : {}),
        });
        console.log(
          `${r.replayed.length} event(s) queued for dispatch again${r.replayed.length ? `: ${r.replayed.join(', ')}` : ''}`,
        );
        for (const n of r.notReplayable) console.log(`  skipped ${n.id}: ${n.reason}`);
      } finally {
        await store.close();
      }
    });
}
