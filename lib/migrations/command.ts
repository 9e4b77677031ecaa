import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkMigrations, formatCheck } from './check';
import { MigrationFileError, loadMigrations } from './files';
import { RELEASED_FILE, renderReleased } from './released';

/**
 * `npm run migrations -- check | release` (scripts/migrations.cjs). `check` prints the check's
 * report and exits 1 on any problem; `release` records every migration of migrations/ (as the
 * synth reads them) as released. Neither touches dist/.
 */
export async function runMigrationsCommand(command: 'check' | 'release', root: string): Promise<number> {
  if (command === 'check') {
    const check = await checkMigrations({ root });
    (check.problems.length === 0 ? process.stdout : process.stderr).write(formatCheck(check));
    return check.problems.length === 0 ? 0 : 1;
  }
  let migrations;
  try {
    migrations = loadMigrations('migrations', { root });
  } catch (error) {
    if (!(error instanceof MigrationFileError)) throw error;
    process.stderr.write(`learnflow-migrations: nothing recorded, fix migrations/ first:\n${error.problems.map((p) => `  - ${p}`).join('\n')}\n`);
    return 1;
  }
  fs.writeFileSync(path.join(root, 'migrations', RELEASED_FILE), renderReleased(migrations));
  process.stdout.write(`learnflow-migrations: migrations/${RELEASED_FILE} records ${migrations.length} released migration(s), up to ${migrations.at(-1)?.version ?? 'none'}\n`);
  return 0;
}
