// dbmate, the peer in the runner comparison. Its npm package ships the binary through
// per-platform optional packages that are published unevenly, which can break `npm ci` from a
// clean clone: so it is not a dependency of the project. The bench installs a pinned version
// into the gitignored .bench/dbmate on first use, and skips the dbmate rows if that fails.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../test/support/dist';
import { Migration } from '../lib/migrations/types';

export const DBMATE_VERSION = '2.36.0';
const PREFIX = path.join(ROOT, '.bench', 'dbmate');

export type Dbmate =
  | { readonly installed: true; readonly bin: string; readonly version: string }
  | { readonly installed: false; readonly bin?: undefined; readonly reason: string };

/** The pinned dbmate binary, installed into .bench/dbmate if it is not there yet. */
export function installDbmate(): Dbmate {
  const bin = path.join(PREFIX, 'node_modules', '.bin', 'dbmate');
  const version = () => spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (!existsSync(bin) || !version().stdout?.includes(DBMATE_VERSION)) {
    mkdirSync(PREFIX, { recursive: true });
    const install = spawnSync('npm', ['install', '--prefix', PREFIX, `dbmate@${DBMATE_VERSION}`, '--no-save', '--no-audit', '--no-fund', '--loglevel=error'], {
      encoding: 'utf8',
      timeout: 180_000,
    });
    if (install.status !== 0) {
      return { installed: false, reason: `npm install dbmate@${DBMATE_VERSION} failed: ${(install.stderr || String(install.error)).trim().split('\n').slice(-3).join(' ')}` };
    }
  }
  const check = version();
  if (check.status !== 0) return { installed: false, reason: `dbmate@${DBMATE_VERSION} installed but does not run here: ${(check.stderr || String(check.error)).trim()}` };
  return { installed: true, bin, version: check.stdout.trim().replace(/^dbmate version /, '') };
}

/**
 * The same migrations in dbmate's layout: one `<version>_<name>.sql` per migration with
 * `-- migrate:up` and `-- migrate:down` sections (`transaction:false` for no-transaction files).
 */
export function writeDbmateMigrations(dir: string, migrations: readonly Migration[]): void {
  mkdirSync(dir, { recursive: true });
  for (const m of migrations) {
    const up = m.transactional ? '-- migrate:up' : '-- migrate:up transaction:false';
    writeFileSync(path.join(dir, `${m.version}_${m.name}.sql`), `${up}\n${m.up.sql}\n-- migrate:down\n${m.down.sql}`);
  }
}
