/**
 * The Kysely database type. Each module declares the tables it owns by augmenting this
 * interface next to its own code, e.g. in src/infra/queue/tables.ts:
 *
 *   declare module '../db/schema.js' { interface Database { bridge_jobs: JobsTable } }
 *
 * so ownership stays with the module while every query is still fully typed.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface Database {}
