export type FaultKind = '429' | '500' | 'timeout';

export interface FaultSpec {
  /** '/contacts/*' style glob (`*` = any chars), or a regex source when it starts with '^'. */
  pathPattern: string;
  method?: string;
  times: number;
  kind: FaultKind;
}

interface ActiveFault extends FaultSpec {
  re: RegExp;
  remaining: number;
}

const globToRe = (g: string) =>
  new RegExp(
    '^' +
      g
        .split('*')
        .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*') +
      '$',
  );

/** Fault injection for the GHL surface: the next N matching calls fail in the requested way. */
export class Faults {
  private faults: ActiveFault[] = [];

  add(f: FaultSpec): void {
    if (!Number.isInteger(f.times) || f.times < 1) throw new Error('injectFault: times must be a positive integer');
    const re = f.pathPattern.startsWith('^') ? new RegExp(f.pathPattern) : globToRe(f.pathPattern);
    this.faults.push({ ...f, re, remaining: f.times });
  }

  /** Consume and return the first matching fault for this request (path without query). */
  take(method: string, path: string): FaultKind | undefined {
    const f = this.faults.find(
      (x) => x.remaining > 0 && (!x.method || x.method.toUpperCase() === method.toUpperCase()) && x.re.test(path),
    );
    if (!f) return undefined;
    f.remaining--;
    if (f.remaining === 0) this.faults = this.faults.filter((x) => x !== f);
    return f.kind;
  }

  list(): FaultSpec[] {
    return this.faults.map(({ pathPattern, method, remaining, kind }) => ({
      pathPattern,
      kind,
      times: remaining,
      ...(method ? { method } : {}),
    }));
  }

  reset(): void {
    this.faults = [];
  }
}
