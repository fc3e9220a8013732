import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/store.js';
import { startBridge, startWorld, type ProviderBridge, type World } from './harness.js';

/**
 * Issue 18 item 5: one location's burst must not stall every other location. GHL's budget is per location, so a
 * burst in A queues A's status reports behind A's own rate limit; B's report must not queue behind them.
 * Machine-speed independent: B's status is compared with how much of A's backlog is still waiting, not with a clock.
 */
let w: World | undefined;
let b: ProviderBridge | undefined;
afterEach(async () => {
  await b?.close();
  await w?.emu.close();
  b = w = undefined;
});

const LIMIT = { burst: 10, intervalMs: 1000, daily: 1_000_000 };
const BURST = 150;

describe('fairness across locations', () => {
  it(`a ${BURST}-message burst in location A (10 status calls/s) does not hold back location B's status report`, async () => {
    w = await startWorld({ locations: 2, emulator: { rateLimit: LIMIT } });
    b = await startBridge(w, { limits: { burst: LIMIT.burst, intervalMs: LIMIT.intervalMs } });
    const [a, bLoc] = w.locationIds as [string, string];
    for (const loc of w.locationIds) await b.provider.configureChannel(loc, { kind: 'loopback' });
    const contact = (loc: string, i: number) =>
      w!.emu.control.createContact({ locationId: loc, phone: `+1213373${String(5000 + i).padStart(4, '0')}` }).id;
    const aContacts = Array.from({ length: 10 }, (_, i) => contact(a, i));
    const bContact = contact(bLoc, 99);
    const send = (loc: string, contactId: string, text: string) =>
      w!.emu.control.sendMessageAsUser({
        locationId: loc,
        contactId,
        type: 'SMS',
        message: text,
        conversationProviderId: w!.providerId,
      }).id;

    const aIds = Array.from({ length: BURST }, (_, i) => send(a, aContacts[i % aContacts.length]!, `a${i}`));
    const delivered = (id: string) => w!.emu.control.getMessage(id)?.status === 'delivered';
    // A's sends are done (the loopback channel answers at once): what remains is A's status backlog at 10/s.
    await waitFor(() => b!.inbox.list(a).length >= BURST, { what: `A's ${BURST} channel sends`, timeoutMs: 60_000 });
    const aWaitingAtStart = aIds.filter((id) => !delivered(id)).length;
    expect(aWaitingAtStart, "A's status reports still waiting once its sends are done").toBeGreaterThan(60);

    const bId = send(bLoc, bContact, 'b');
    await waitFor(() => delivered(bId), { what: "B's status reported", timeoutMs: 60_000, intervalMs: 20 });
    const aStillWaiting = aIds.filter((id) => !delivered(id)).length;
    // Oldest-first claiming puts B's report behind all of A's (A's backlog would be ~0 by then). Fair claiming lets
    // it through within about one of A's status calls: most of A's backlog is still waiting.
    expect(
      aStillWaiting,
      `A waiting: ${aWaitingAtStart} when B was sent, ${aStillWaiting} when B was reported`,
    ).toBeGreaterThan(aWaitingAtStart - 30);

    // A still drains completely, at its own rate.
    await waitFor(() => aIds.every(delivered), { what: "A's backlog drained", timeoutMs: 120_000, intervalMs: 200 });
  }, 180_000);
});
