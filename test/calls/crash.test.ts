import { afterEach, describe, expect, it } from 'vitest';
import { spawnTs, type Child } from '../fixtures/child.js';
import { openTestStore, STORE, waitFor, type TestStore } from '../helpers/store.js';
import { ADMIN, install, startWorld, type World } from '../provider/harness.js';

/**
 * SIGKILL while a call is being enriched (the transcript request is in flight): after a restart the call is
 * completed — transcript stored, call.completed emitted once.
 */
let w: World | undefined;
let store: TestStore | undefined;
const children: Child[] = [];
afterEach(async () => {
  for (const c of children.splice(0))
    if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  await w?.emu.close();
  if (STORE === 'postgres') await store?.close();
  w = store = undefined;
});

async function spawnBridge(env: Record<string, string>): Promise<{ child: Child; url: string }> {
  const child = spawnTs('test/calls/fixtures/bridge-child.ts', [], env);
  children.push(child);
  const line = await child.waitForLine(/"url"/, 60_000);
  return { child, url: (JSON.parse(line) as { url: string }).url };
}

describe('SIGKILL during enrichment', () => {
  it('the call is completed after the restart, with its transcript and one call.completed', async () => {
    w = await startWorld();
    store = await openTestStore({ onDisk: true });
    if (STORE === 'pglite') await store.close(); // the child owns the data directory
    const env = {
      ...w.env,
      ...store.env,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'silent',
      JOB_LEASE_MS: '1000',
      JOB_POLL_MS: '50',
      WEBHOOK_EXTRA_ED25519_KEYS: w.emu.keys.ed25519PublicKeyPem,
    };
    const loc = w.locationIds[0]!;
    const first = await spawnBridge(env);
    w.emu.control.updateApp(w.clientId, { webhookUrl: `${first.url}/webhooks/ghl` });
    await install(first.url, loc);
    const contact = w.emu.control.createContact({ locationId: loc, firstName: 'Kim', phone: '+14155552671' });
    w.emu.control.injectFault({
      pathPattern: `/conversations/locations/${loc}/messages/*/transcription`,
      method: 'GET',
      times: 1,
      kind: 'timeout',
    });
    const r = await fetch(`${w.emu.baseUrl}/_emulator/calls`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ locationId: loc, contactId: contact.id, status: 'completed', transcript: ['Survived.'] }),
    });
    const { messageId } = (await r.json()) as { messageId: string };
    const emu = w.emu;
    await waitFor(() => emu.control.listFaults().length === 0, { what: 'transcript request hanging' });
    first.child.proc.kill('SIGKILL');
    await first.child.exited;

    const second = await spawnBridge(env);
    const get = async (path: string) =>
      (await (await fetch(`${second.url}${path}`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as {
        calls?: Array<{ id: number; messageId: string; transcript: { state: string; text: string | null } }>;
        events?: Array<{ type: string; callId: number }>;
      };
    const call = await waitFor(
      async () =>
        (await get(`/v1/locations/${loc}/calls`)).calls?.find(
          (c) => c.messageId === messageId && c.transcript.state === 'ready',
        ),
      { what: 'the call enriched after the restart', timeoutMs: 30_000 },
    );
    expect(call.transcript.text).toBe('Survived.');
    const events = (await get(`/v1/locations/${loc}/call-events`)).events!.filter((e) => e.callId === call.id);
    expect(events.map((e) => e.type)).toEqual(['call.completed']);
  }, 90_000);
});
