import { statementsOf } from '../migrations/files';
import { Migration } from '../migrations/types';

const NAME = String.raw`(?:"[^"]+"|[A-Za-z_][\w$]*)`;
const QUALIFIED = String.raw`${NAME}(?:\.${NAME})?`;
const CREATE_TABLE = new RegExp(String.raw`^CREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(${QUALIFIED})`, 'i');
const DROP_TABLE = new RegExp(String.raw`^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(${QUALIFIED}(?:\s*,\s*${QUALIFIED})*)`, 'i');
const RENAME_TABLE = new RegExp(String.raw`^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(${QUALIFIED})\s+RENAME\s+TO\s+(${NAME})`, 'i');

/** Unquoted names fold to lower case, as PostgreSQL folds them. */
const canonical = (name: string) => name.split(/\.(?=(?:[^"]*"[^"]*")*[^"]*$)/).map((p) => (p.startsWith('"') ? p : p.toLowerCase())).join('.');

/**
 * The tables that exist once every up file has run, in creation order: what the verification
 * Job checks. Follows CREATE TABLE, DROP TABLE and ALTER TABLE ... RENAME TO; temporary tables
 * are not schema.
 */
export function expectedTables(migrations: readonly Migration[]): string[] {
  const tables: string[] = [];
  for (const migration of migrations) {
    for (const { text } of statementsOf(migration.up)) {
      const created = CREATE_TABLE.exec(text);
      const dropped = DROP_TABLE.exec(text);
      const renamed = RENAME_TABLE.exec(text);
      if (created) tables.push(canonical(created[1]));
      if (dropped) for (const name of dropped[1].split(',')) remove(tables, canonical(name.trim()));
      if (renamed) {
        const from = canonical(renamed[1]);
        const schema = from.includes('.') ? `${from.slice(0, from.lastIndexOf('.'))}.` : '';
        const at = tables.indexOf(from);
        if (at >= 0) tables[at] = schema + canonical(renamed[2]);
      }
    }
  }
  return tables;
}

function remove(tables: string[], name: string): void {
  const at = tables.indexOf(name);
  if (at >= 0) tables.splice(at, 1);
}
