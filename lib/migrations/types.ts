/** One SQL file of a migration, as it is embedded in the migration ConfigMap. */
export interface MigrationFile {
  /** ConfigMap key and file name inside the Job's mount, e.g. `001_create_users.up.sql`. */
  readonly key: string;
  /** Path relative to the project root, for error messages, e.g. `migrations/001_create_users.up.sql`. */
  readonly source: string;
  /** The file's text, exactly as read (UTF-8, LF line endings). */
  readonly sql: string;
  /** Lowercase hex SHA-256 of the file's bytes. */
  readonly sha256: string;
}

/** A versioned schema change: an up file, the down file that undoes it, and how it runs. */
export interface Migration {
  /** Zero-padded numeric version as written in the file name, e.g. `001`. */
  readonly version: string;
  /** Lowercase words joined by `_`, e.g. `create_users`. */
  readonly name: string;
  readonly up: MigrationFile;
  readonly down: MigrationFile;
  /**
   * False when the up file starts with the `-- learnflow:no-transaction` header: it then runs
   * outside a transaction (CREATE INDEX CONCURRENTLY) and must be idempotent.
   */
  readonly transactional: boolean;
  /**
   * False when the down file starts with the `-- learnflow:irreversible <reason>` marker: it
   * cannot undo the up file, and a rollback past this migration is refused.
   * @default true
   */
  readonly reversible?: boolean;
}
