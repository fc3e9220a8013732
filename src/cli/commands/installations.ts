import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadKeyRing } from '../../infra/crypto/keyring.js';
import { createGhlClient } from '../../platform/ghl/client.js';
import { RateLimiter } from '../../platform/ghl/ratelimit.js';
import { InstallationsService } from '../../platform/installations/service.js';
import { TokenVault } from '../../platform/installations/vault.js';
import { CALLBACK_PATH } from '../../platform/installations/routes.js';
import { createLogger } from '../../infra/log/logger.js';
import { configOrExit, fail, openStore } from '../common.js';

async function withService<T>(fn: (s: InstallationsService) => Promise<T>): Promise<T> {
  const config = configOrExit();
  const log = createLogger({ level: 'warn', secrets: config.secretValues });
  const store = await openStore(config);
  try {
    const clientId = config.GHL_CLIENT_ID ?? 'sandbox-app';
    const vault = new TokenVault({
      db: store.db,
      kind: store.kind,
      ring: loadKeyRing(config, log),
      log,
      apiBase: config.GHL_API_BASE,
      clientId,
      clientSecret: config.GHL_CLIENT_SECRET ?? '',
    });
    const limiter = new RateLimiter(store.db, clientId);
    const client = createGhlClient({ apiBase: config.GHL_API_BASE, tokens: vault, limiter, log });
    const svc = new InstallationsService({
      db: store.db,
      vault,
      client,
      log,
      apiBase: config.GHL_API_BASE,
      marketplaceBase: config.GHL_MARKETPLACE_BASE,
      clientId,
      clientSecret: config.GHL_CLIENT_SECRET ?? '',
      scopes: config.GHL_SCOPES,
      redirectUri: `${config.publicUrl}${CALLBACK_PATH}`,
    });
    try {
      return await fn(svc);
    } finally {
      await limiter.close();
    }
  } catch (e) {
    fail(e);
  } finally {
    await store.close();
  }
}

export function registerInstallationsCommand(program: Command): void {
  const cmd = program
    .command('installations')
    .description('GHL installations (locations and agencies the bridge acts for)');
  cmd
    .command('list')
    .description('list installations (tokens are never shown, only masked)')
    .option('--status <status>', 'active, reauth_required or uninstalled')
    .option('--json', 'print JSON lines')
    .action(async (o: { status?: 'active' | 'reauth_required' | 'uninstalled'; json?: boolean }) => {
      const rows = await withService((s) => s.list(o.status ? { status: o.status } : {}));
      if (o.json) for (const r of rows) console.log(JSON.stringify(r));
      else if (!rows.length) console.log('no installations');
      else
        for (const r of rows)
          console.log(
            `${r.id}\t${r.status}\t${r.tokenSource}\tcompany=${r.companyId}\texpires=${r.expiresAt?.toISOString() ?? '-'}\ttoken=${r.accessToken}${r.statusReason ? `\t${r.statusReason}` : ''}`,
          );
    });
  cmd
    .command('pit')
    .description('configure a Private Integration Token for a location (or agency): read from --token-file or stdin')
    .requiredOption('--company <companyId>', 'agency (company) id of the location')
    .option('--location <locationId>', 'sub-account id (omit for an agency PIT)')
    .option('--token-file <path>', 'file holding the token (default: stdin)')
    .action(async (o: { company: string; location?: string; tokenFile?: string }) => {
      const token = readFileSync(o.tokenFile ?? 0, 'utf8').trim();
      if (token.length < 8) fail(new Error('no token given (pipe it on stdin or use --token-file)'));
      const v = await withService((s) =>
        s.configurePit(o.location ? { locationId: o.location, companyId: o.company } : { companyId: o.company }, token),
      );
      console.log(`${v.id} now uses a private integration token (${v.accessToken})`);
    });
  cmd
    .command('reconcile')
    .description("compare agency installations with GHL's installed-locations list now")
    .action(async () => {
      const r = await withService((s) => s.reconcile());
      console.log(`${r.companies} agency installation(s) checked: ${r.added} location(s) added, ${r.removed} removed`);
    });
}
