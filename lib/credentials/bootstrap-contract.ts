import * as path from 'node:path';
import { ScriptContract, renderScript } from '../script-contract';
import { CREDENTIAL_KEYS, MIN_SUPPLIED_PASSWORD_LENGTH } from './keys';

/** The contract of bootstrap.sh, the credentials Job's command. */
export const BOOTSTRAP = {
  body: path.join(__dirname, 'bootstrap.sh'),
  program: 'learnflow-credentials',
  exits: {
    ok: { code: 0, retried: false, meaning: 'the Secret exists and is usable (created, or kept as it was)' },
    refused: { code: 1, retried: false, meaning: 'refused: Secret missing while data exists, or a user-managed Secret missing or too weak' },
    apiUnavailable: { code: 2, retried: true, meaning: 'Kubernetes API not accessible' },
    otherMajor: { code: 3, retried: false, meaning: 'the data volume runs another PostgreSQL major than the chart would start on it' },
    dataElsewhere: { code: 4, retried: false, meaning: "the data is on the other architecture's claim (read replicas turned on or off): the primary would start empty" },
  },
  knobs: {
    /** generate: create the Secret once; verify: it is user-managed, check it. */
    mode: { env: 'CREDENTIALS_MODE' },
    namespace: { env: 'NAMESPACE' },
    secretName: { env: 'SECRET_NAME' },
    /** The database's data claim: a Secret is never generated while it exists. */
    dataClaim: { env: 'DATA_CLAIM' },
    /**
     * The primary's data claim under the other architecture (standalone or with read replicas):
     * the chart names the primary after it, so switching leaves the data on this claim.
     */
    otherDataClaim: { env: 'OTHER_DATA_CLAIM' },
    /** The chart's StatefulSet: the PostgreSQL major it runs on the data claim (lib/major-version.ts). */
    statefulSet: { env: 'STATEFULSET' },
    /** The major this render's chart starts: another one on an existing data claim stops the sync. */
    postgresqlMajor: { env: 'POSTGRESQL_MAJOR' },
    /** `<chart version>=<major>` of every chart release, for a StatefulSet whose image names no version. */
    chartMajors: { env: 'CHART_MAJORS' },
    passwordLength: { env: 'PASSWORD_LENGTH', default: '40', rule: { kind: 'whole', unit: 'characters', min: 32, max: 128 } },
    minPasswordLength: { env: 'MIN_PASSWORD_LENGTH', default: String(MIN_SUPPLIED_PASSWORD_LENGTH), rule: { kind: 'whole', unit: 'characters', min: 1, max: 128 } },
    adminPasswordKey: { env: 'ADMIN_PASSWORD_KEY', default: CREDENTIAL_KEYS.adminPassword },
    passwordKey: { env: 'PASSWORD_KEY', default: CREDENTIAL_KEYS.password },
    uriKey: { env: 'URI_KEY', default: CREDENTIAL_KEYS.uri },
    /** More password keys this deployment needs (space-separated): generated when missing, required when user-managed. */
    extraPasswordKeys: { env: 'EXTRA_PASSWORD_KEYS' },
    pooledUriKey: { env: 'POOLED_URI_KEY', default: CREDENTIAL_KEYS.pooledUri },
    /** With the pooler: its Service's host and port, for the pooled connection string. */
    poolerHost: { env: 'POOLER_HOST' },
    poolerPort: { env: 'POOLER_PORT' },
  },
} as const satisfies ScriptContract;

/** bootstrap.sh as the Job runs it. */
export function bootstrapScript(): string {
  return renderScript(BOOTSTRAP);
}
