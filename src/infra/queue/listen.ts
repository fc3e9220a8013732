import type { DatabaseHandle } from '../db/index.js';
import { notifyChannel } from './jobs.js';

/** Wakes workers when any replica enqueues (NOTIFY is sent by enqueue, delivered at commit). */
export async function listenForJobs(store: DatabaseHandle, onNotify: () => void): Promise<() => Promise<void>> {
  const channel = await notifyChannel(store.db);
  return store.listen(channel, () => onNotify());
}
