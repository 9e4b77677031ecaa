import { SCRIPTS_MOUNT } from './contracts';

/**
 * The lines the database gets through the chart's `primary.extendedConfiguration` (the image
 * copies them into conf.d/, which its generated postgresql.conf includes on every start, so they
 * survive the image rewriting postgresql.conf): archive every completed segment with archive.sh
 * and switch segments at least every `archiveTimeoutSeconds` while anything is written.
 */
export function archiveConfiguration(archiveTimeoutSeconds: number): string {
  return [
    '# learnflow-postgres: continuous WAL archiving (README: Point-in-time recovery)',
    'wal_level = replica',
    'archive_mode = on',
    `archive_command = 'sh ${SCRIPTS_MOUNT}/archive.sh "%p" "%f"'`,
    `archive_timeout = ${archiveTimeoutSeconds}`,
    '',
  ].join('\n');
}

/**
 * `primary.pgHbaConfiguration` when base backups are on: the rules the image generates by itself
 * (password authentication from the network) plus replication connections for pg_basebackup as
 * `postgres`. A custom file replaces the image's entirely, and the image's first start creates
 * the roles over loopback without a password, so loopback inside the database pod is trusted, as
 * the chart documents for a custom pg_hba.conf: only the containers of that pod reach it.
 */
export const PG_HBA_WITH_REPLICATION = [
  'local     all          all                       trust',
  'host      all          all          127.0.0.1/32 trust',
  'host      all          all          ::1/128      trust',
  'host      all          all          0.0.0.0/0    md5',
  'host      all          all          ::/0         md5',
  'host      replication  postgres     0.0.0.0/0    md5',
  'host      replication  postgres     ::/0         md5',
  '',
].join('\n');
