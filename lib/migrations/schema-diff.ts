/**
 * Compares two `pg_dump --schema-only` outputs object by object: what a down file left behind
 * (objects its up file created and it did not drop), what it removed that was there before, and
 * what it changed (a column left on a table, a default, a privilege). pg_dump writes each object
 * under a header `-- Name: <name>; Type: <type>; Schema: <schema>; Owner: <owner>`; the text
 * under it is the object's definition.
 */

/** One object of a dump: `TABLE public.users`, with its definition. */
export interface DumpedObject {
  /** `<type> <schema>.<name>`, or `<type> <name>` for objects outside a schema. */
  readonly id: string;
  readonly definition: string;
}

export interface SchemaDiff {
  /** In the second dump only: left behind. */
  readonly added: readonly DumpedObject[];
  /** In the first dump only: removed. */
  readonly removed: readonly DumpedObject[];
  /** In both, defined differently: the lines only the second has (+) or only the first (-). */
  readonly changed: readonly { readonly id: string; readonly lines: readonly string[] }[];
}

const HEADER = /^-- Name: (.*); Type: (.*); Schema: (.*); Owner: .*$/;

/** The objects of a dump, by id; the preamble, comments and pg_dump's `\restrict` lines left out. */
export function dumpedObjects(dump: string): Map<string, DumpedObject> {
  const objects = new Map<string, DumpedObject>();
  let id: string | undefined;
  let lines: string[] = [];
  const flush = () => {
    if (id !== undefined) {
      // Two objects may share a header (overloaded functions): keep both, numbered.
      let key = id;
      for (let n = 2; objects.has(key); n++) key = `${id} (${n})`;
      objects.set(key, { id: key, definition: lines.join('\n').trim() });
    }
    lines = [];
  };
  for (const line of dump.split('\n')) {
    const header = HEADER.exec(line);
    if (header) {
      flush();
      const [, name, type, schema] = header;
      id = `${type} ${schema === '-' ? name : `${schema}.${name}`}`;
    } else if (id !== undefined && !line.startsWith('--') && !/^\\(un)?restrict /.test(line)) {
      lines.push(line);
    }
  }
  flush();
  return objects;
}

export function diffDumps(before: string, after: string): SchemaDiff {
  const a = dumpedObjects(before);
  const b = dumpedObjects(after);
  const added = [...b.values()].filter((o) => !a.has(o.id));
  const removed = [...a.values()].filter((o) => !b.has(o.id));
  const changed = [...b.values()].flatMap((o) => {
    const old = a.get(o.id);
    if (!old || old.definition === o.definition) return [];
    const oldLines = new Set(old.definition.split('\n'));
    const newLines = new Set(o.definition.split('\n'));
    const lines = [
      ...[...newLines].filter((l) => !oldLines.has(l)).map((l) => `+ ${l.trim()}`),
      ...[...oldLines].filter((l) => !newLines.has(l)).map((l) => `- ${l.trim()}`),
    ];
    return [{ id: o.id, lines }];
  });
  return { added, removed, changed };
}

/** True when the dumps define the same objects identically. */
export function sameSchema(diff: SchemaDiff): boolean {
  return diff.added.length === 0 && diff.removed.length === 0 && diff.changed.length === 0;
}

/** The differences, one line per object: left behind, removed, changed (with the lines that differ). */
export function describeDiff(diff: SchemaDiff): string[] {
  return [
    ...diff.added.map((o) => `left behind: ${o.id}`),
    ...diff.removed.map((o) => `removed, though there before the up file: ${o.id}`),
    ...diff.changed.map((c) => `changed: ${c.id} (${c.lines.join('; ')})`),
  ];
}
