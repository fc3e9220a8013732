export * from './define.js';
export * from './errors.js';
export * from './jobs.js';
export * from './worker.js';
export type { JobState } from './tables.js';
