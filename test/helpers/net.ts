import { createServer } from 'node:net';

/** A TCP port free right now on 127.0.0.1 (for servers whose URL must be known before they listen). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}
