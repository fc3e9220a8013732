/** Emulator clock: wall time plus a test-controlled offset (advance() moves it forward only). */
export class Clock {
  private offsetMs = 0;

  now(): number {
    return Date.now() + this.offsetMs;
  }

  iso(): string {
    return new Date(this.now()).toISOString();
  }

  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new Error('clock.advance: ms must be a non-negative number');
    this.offsetMs += ms;
  }

  reset(): void {
    this.offsetMs = 0;
  }
}
