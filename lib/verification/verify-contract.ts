import * as path from 'node:path';
import { APPLIED_MIGRATIONS_TABLE } from '../migrations/runner-contract';
import { ScriptContract, renderScript } from '../script-contract';

/** The contract of verify.sh: health stages 3 and 4, rendered into the verification Job's command. */
export const VERIFY = {
  body: path.join(__dirname, 'verify.sh'),
  program: 'learnflow-verify',
  exits: {
    ok: { code: 0, retried: false, meaning: 'healthy: the database answers, the migrations are applied and every table exists' },
    usage: { code: 1, retried: false, meaning: 'bad knob' },
    healthCheckFailed: { code: 5, retried: false, meaning: 'migrations not applied in time, tables missing, WAL archiving failing right now, or a read replica unreachable, not in recovery or lagging past the bound' },
    connectionFailed: { code: 8, retried: true, meaning: 'the database was unreachable within the wait, refused the login, or the connection dropped' },
  },
  knobs: {
    /** Tables that must exist, space-separated, as `to_regclass` reads them. */
    expectedTables: { env: 'EXPECTED_TABLES' },
    /** The newest version of the plan, as a number without leading zeros; 0 when there are no migrations. */
    expectedVersion: { env: 'EXPECTED_VERSION' },
    /** Seconds to wait for a connection (stage 3), then exit 8. */
    dbWaitSeconds: { env: 'VERIFY_DB_WAIT_SECONDS', default: '300', rule: { kind: 'whole', unit: 'seconds', min: 2, max: 86400 } },
    /** Seconds to wait for the newest migration (stage 4), then exit 5. */
    migrationsWaitSeconds: { env: 'VERIFY_MIGRATIONS_WAIT_SECONDS', default: '900', rule: { kind: 'whole', unit: 'seconds', min: 1, max: 172800 } },
    /** The read replicas to check, space-separated `host` or `host:port` (each pod's own name). */
    replicas: { env: 'VERIFY_REPLICAS' },
    /** The WAL a replica may be behind the primary, in bytes. */
    maxLagBytes: { env: 'VERIFY_MAX_LAG_BYTES', default: String(16 * 2 ** 20), rule: { kind: 'whole', unit: 'bytes', min: 2 ** 20, max: 64 * 2 ** 30 } },
    /** Seconds a replica has to answer and catch up before exit 5. */
    replicaWaitSeconds: { env: 'VERIFY_REPLICA_WAIT_SECONDS', default: '300', rule: { kind: 'whole', unit: 'seconds', min: 1, max: 86400 } },
    /** Where each replica's finding goes, one line (lib/verification/replica-report.ts): the pod's termination message file. */
    reportFile: { env: 'VERIFY_REPORT_FILE' },
  },
  constants: { TABLE: APPLIED_MIGRATIONS_TABLE },
  includes: [path.join(__dirname, '..', 'tls-failures.sh')],
} as const satisfies ScriptContract;

/** verify.sh as the Job runs it. */
export function verifyScript(): string {
  return renderScript(VERIFY);
}
