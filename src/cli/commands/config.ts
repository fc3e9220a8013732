import type { Command } from 'commander';
import { VARS } from '../../infra/config/index.js';

export function configTable(): string {
  const rows = VARS.map((v) => {
    const def = (v.schema as { def?: { defaultValue?: unknown } }).def?.defaultValue;
    const shown = def === undefined ? '' : `\`${String(typeof def === 'function' ? (def as () => unknown)() : def)}\``;
    return `| \`${v.name}\` | ${v.description}${'secret' in v && v.secret ? ' **Secret.**' : ''} | ${shown} | \`${v.example}\` |`;
  });
  return ['| Variable | Meaning | Default | Example |', '|---|---|---|---|', ...rows].join('\n');
}

export function registerConfigCommand(program: Command): void {
  program
    .command('config')
    .description('print the configuration variables as a markdown table')
    .action(() => {
      console.log(configTable());
    });
}
