import {
  PostgresDialect,
  sql,
  type DatabaseIntrospector,
  type DatabaseMetadata,
  type DatabaseMetadataOptions,
  type Kysely,
  type SchemaMetadata,
  type TableMetadata,
} from 'kysely';

/**
 * Introspects only the bridge's own schema. Kysely's Postgres introspector reads every table of
 * every schema in the database (its migrator uses it to look for its own tables), which is
 * wasted work on a shared database and fails when another schema is dropped concurrently
 * ("schema … does not exist" from the catalog scan).
 */
export class SchemaScopedIntrospector implements DatabaseIntrospector {
  constructor(private readonly db: Kysely<unknown>) {}

  async getSchemas(): Promise<SchemaMetadata[]> {
    const r = await sql<{
      name: string;
    }>`select nspname as name from pg_catalog.pg_namespace where nspname = current_schema()`.execute(this.db);
    return r.rows.map((x) => ({ name: x.name }));
  }

  async getTables(options: DatabaseMetadataOptions = { withInternalKyselyTables: false }): Promise<TableMetadata[]> {
    const cols = await sql<{
      table: string;
      kind: string;
      schema: string;
      column: string | null;
      type: string | null;
      nullable: boolean | null;
      has_default: boolean | null;
      auto: boolean | null;
    }>`
      select c.relname as table, c.relkind as kind, ns.nspname as schema,
        a.attname as column, t.typname as type, not a.attnotnull as nullable, a.atthasdef as has_default,
        coalesce(pg_get_expr(d.adbin, d.adrelid) like 'nextval(%', false) or a.attidentity <> '' as auto
      from pg_catalog.pg_class c
      join pg_catalog.pg_namespace ns on ns.oid = c.relnamespace
      left join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      left join pg_catalog.pg_type t on t.oid = a.atttypid
      left join pg_catalog.pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
      where ns.nspname = current_schema() and c.relkind in ('r', 'v', 'p')
      order by c.relname, a.attnum`.execute(this.db);
    const tables = new Map<
      string,
      { name: string; schema: string; isView: boolean; columns: TableMetadata['columns'][number][] }
    >();
    for (const r of cols.rows) {
      if (!options.withInternalKyselyTables && r.table.startsWith('kysely_')) continue;
      let t = tables.get(r.table);
      if (!t) tables.set(r.table, (t = { name: r.table, schema: r.schema, isView: r.kind === 'v', columns: [] }));
      if (r.column)
        t.columns.push({
          name: r.column,
          dataType: r.type ?? 'unknown',
          isNullable: !!r.nullable,
          hasDefaultValue: !!r.has_default,
          isAutoIncrementing: !!r.auto,
        });
    }
    return [...tables.values()];
  }

  async getMetadata(options?: DatabaseMetadataOptions): Promise<DatabaseMetadata> {
    return { tables: await this.getTables(options) };
  }
}

/** PostgreSQL dialect (node-postgres) with the schema-scoped introspector. */
export class ScopedPostgresDialect extends PostgresDialect {
  override createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SchemaScopedIntrospector(db);
  }
}
