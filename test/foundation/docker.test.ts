import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { DockerfileParser, type Instruction, type JSONInstruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig, VARS } from '../../src/infra/config/index.js';
import { freePort } from '../helpers/net.js';
import { startTestBridge } from '../helpers/store.js';

// No Docker engine runs here or in CI: the Dockerfile and compose.yaml are checked statically (a Dockerfile
// linter, then the properties a deployment relies on), and the health check's command is run for real.
const dockerfile = readFileSync('Dockerfile', 'utf8');
const instructions = DockerfileParser.parse(dockerfile).getInstructions();
const lastFrom = instructions.map((i) => i.getKeyword()).lastIndexOf('FROM');
const runtime = instructions.slice(lastFrom);
const one = (list: Instruction[], keyword: string) => {
  const found = list.filter((i) => i.getKeyword() === keyword);
  expect(found, keyword).toHaveLength(1);
  return found[0]!;
};
const jsonArgs = (i: Instruction) => (i as JSONInstruction).getJSONStrings().map((s) => s.getJSONValue());

const runNode = async (args: string[], env: NodeJS.ProcessEnv) => {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: 'ignore' });
  return (await once(child, 'exit'))[0] as number;
};

describe('Dockerfile', () => {
  it('passes the Dockerfile linter (which does catch a broken instruction)', () => {
    expect(validate(dockerfile)).toEqual([]);
    expect(validate(dockerfile.replace('STOPSIGNAL SIGTERM', 'STOPSIGNAL')).length).toBeGreaterThan(0);
  });

  it('is multi-stage: the runtime stage copies the build output and production dependencies, and builds nothing', () => {
    expect(instructions.filter((i) => i.getKeyword() === 'FROM').length).toBeGreaterThanOrEqual(2);
    const copies = runtime.filter((i) => i.getKeyword() === 'COPY').map((i) => i.getArgumentsContent() ?? '');
    expect(runtime.filter((i) => i.getKeyword() === 'COPY').every((i) => /--from=build/.test(i.getTextContent()))).toBe(
      true,
    );
    expect(copies).toEqual(
      expect.arrayContaining([
        '/app/dist ./dist',
        '/app/node_modules ./node_modules',
        '/app/package.json ./package.json',
      ]),
    );
    expect(runtime.filter((i) => i.getKeyword() === 'RUN').map((i) => i.getArgumentsContent())).not.toContainEqual(
      expect.stringMatching(/npm (ci|install)|tsc|npm run build/),
    );
    // The build stage prunes dev dependencies before the runtime stage takes node_modules.
    expect(
      instructions
        .slice(0, lastFrom)
        .some((i) => i.getKeyword() === 'RUN' && /npm prune --omit=dev/.test(i.getArgumentsContent() ?? '')),
    ).toBe(true);
    // What the build stage copies exists and is not excluded from the build context.
    const ignored = readFileSync('.dockerignore', 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src']) {
      expect(existsSync(f), f).toBe(true);
      expect(ignored, f).not.toContain(f);
    }
  });

  it('runs as a non-root user, stops on SIGTERM, and starts the CLI as PID 1 (exec form)', () => {
    expect(one(runtime, 'USER').getArgumentsContent()).toBe('node');
    expect(one(runtime, 'STOPSIGNAL').getArgumentsContent()).toBe('SIGTERM');
    expect(jsonArgs(one(runtime, 'ENTRYPOINT'))).toEqual(['node', 'dist/cli/main.js']);
    expect(jsonArgs(one(runtime, 'CMD'))).toEqual(['start']);
    const env = one(runtime, 'ENV').getArgumentsContent() ?? '';
    expect(env).toMatch(/PORT=3000/);
    expect(one(runtime, 'EXPOSE').getArgumentsContent()).toBe('3000');
    expect(existsSync('src/cli/main.ts')).toBe(true);
  });

  it('has a HEALTHCHECK on /readyz whose command passes against a ready bridge and fails without one', async () => {
    const hc = one(runtime, 'HEALTHCHECK').getTextContent();
    const json = /CMD (\[.*\])\s*$/s.exec(hc.replace(/\\\n/g, ' '))?.[1];
    const cmd = JSON.parse(json!) as string[];
    expect(cmd[0]).toBe('node');
    expect(cmd.join(' ')).toContain('/readyz');
    const bridge = await startTestBridge();
    try {
      const port = new URL(bridge.url).port;
      expect(await runNode(cmd.slice(1), { PORT: port })).toBe(0);
    } finally {
      await bridge.close();
    }
    expect(await runNode(cmd.slice(1), { PORT: String(await freePort()) })).toBe(1);
  });
});

describe('compose.yaml', () => {
  const compose = parse(readFileSync('compose.yaml', 'utf8')) as {
    services: Record<
      string,
      {
        image?: string;
        build?: string;
        depends_on?: Record<string, { condition: string }>;
        environment?: Record<string, string>;
        healthcheck?: { test: string[] };
        stop_grace_period?: string;
        ports?: string[];
      }
    >;
  };

  it('runs the bridge (built from this Dockerfile) on a PostgreSQL that is healthy first', () => {
    const { db, bridge } = compose.services;
    expect(db?.image).toMatch(/^postgres:\d+/);
    expect(db?.healthcheck?.test.join(' ')).toMatch(/pg_isready/);
    expect(bridge?.build).toBe('.');
    expect(bridge?.depends_on).toEqual({ db: { condition: 'service_healthy' } });
    expect(bridge?.environment?.DATABASE_URL).toMatch(/^postgres:\/\/bridge:.*@db:5432\/bridge$/);
    expect(bridge?.ports).toContain('3000:3000');
  });

  it('names only variables the bridge knows, and gives shutdown longer than SHUTDOWN_TIMEOUT_MS', () => {
    const known = new Set<string>(VARS.map((v) => v.name));
    expect(Object.keys(compose.services.bridge?.environment ?? {}).filter((k) => !known.has(k))).toEqual([]);
    const grace = /^(\d+)s$/.exec(compose.services.bridge?.stop_grace_period ?? '')?.[1];
    const shutdownMs = loadConfig({}).SHUTDOWN_TIMEOUT_MS; // the default
    expect(Number(grace) * 1000).toBeGreaterThan(shutdownMs);
  });
});
