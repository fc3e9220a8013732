import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * SSRF guard for subscription endpoints: every address a host resolves to must be public unicast, unless it is inside
 * one of the allowed networks (EVENTS_ALLOWED_NETWORKS). Checked when a subscription is created and again at every
 * connection (the `lookup` hook of node:http), so a DNS answer that changes after creation (rebinding) is refused
 * too: the bridge connects only to an address it has just checked.
 */
export class SsrfGuard {
  readonly #allowed: Array<[ipaddr.IPv4 | ipaddr.IPv6, number]>;

  constructor(allowedNetworks: readonly string[]) {
    this.#allowed = allowedNetworks.map((n) => ipaddr.parseCIDR(n));
  }

  /** null when the address may be connected to, else why not ("127.0.0.1 is loopback"). */
  refusal(address: string): string | null {
    let ip: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      ip = ipaddr.process(address);
    } catch {
      return `${address} is not an IP address`;
    }
    for (const [net, bits] of this.#allowed) if (ip.kind() === net.kind() && ip.match(net, bits)) return null;
    const range = ip.range();
    if (range === 'unicast') return null;
    return `${address}, a ${range} address (not allowed unless EVENTS_ALLOWED_NETWORKS lists it)`;
  }

  /** Resolves a URL's host and checks every address; throws with the reason. */
  async check(url: string): Promise<void> {
    const host = hostOf(url);
    const addrs = isIP(host)
      ? [host]
      : await new Promise<string[]>((resolve, reject) =>
          dnsLookup(host, { all: true }, (err, res) =>
            err
              ? reject(new SsrfError(`${host} does not resolve (${err.code ?? err.message})`))
              : resolve(res.map((a) => a.address)),
          ),
        );
    for (const a of addrs) {
      const why = this.refusal(a);
      if (why) throw new SsrfError(`${host} resolves to ${why}`);
    }
  }

  /** A `lookup` for node:http / net.connect that refuses hosts resolving to a forbidden address. */
  readonly lookup = (
    hostname: string,
    options: { all?: boolean; family?: number } | number,
    cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    const opts = typeof options === 'number' ? { family: options } : options;
    dnsLookup(hostname, { all: true, ...(opts.family ? { family: opts.family } : {}) }, (err, addrs) => {
      if (err) return cb(err, '');
      for (const a of addrs) {
        const why = this.refusal(a.address);
        if (why) return cb(new SsrfError(`${hostname} resolves to ${why}`), '');
      }
      if (opts.all) return cb(null, addrs);
      const first = addrs[0];
      if (!first) return cb(new SsrfError(`${hostname} has no address`), '');
      cb(null, first.address, first.family);
    });
  };
}

export class SsrfError extends Error {
  code = 'ESSRF';
}

export function hostOf(url: string): string {
  const h = new URL(url).hostname;
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

/** Validates one network of EVENTS_ALLOWED_NETWORKS ("127.0.0.0/8", "::1/128", or a bare address). */
export function parseNetwork(s: string): string {
  const t = s.trim();
  if (ipaddr.isValidCIDR(t)) return t;
  if (ipaddr.isValid(t)) return `${t}/${ipaddr.parse(t).kind() === 'ipv4' ? 32 : 128}`;
  throw new Error(`"${t}" is not a network (CIDR such as 127.0.0.0/8 or ::1/128, or an address)`);
}
