import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { DatabaseEndpoint, containerEnvironment } from '../database-client';
import { DEFAULT_KUBECTL_IMAGE, imageName } from '../images';
import { projectJob } from '../job';
import { resourceName, standardLabels } from '../names';
import { SYNC_WAVES, syncWave } from '../sync-waves';
import { failJobOnExitCodes } from '../script-contract';
import { BOOTSTRAP, bootstrapScript } from './bootstrap-contract';
import { CREDENTIAL_KEYS, MIN_SUPPLIED_PASSWORD_LENGTH } from './keys';
import { chartMajors } from '../major-version';
import { chartObjects } from '../chart';


/** Where the database's passwords come from (a deployment's `credentials` props). */
export interface CredentialsProps {
  /**
   * Name of a Secret you manage (by hand, External Secrets, Sealed Secrets). It must hold the
   * keys `postgres-password` and `password` (16+ characters each); nothing is generated.
   * @default none: a Secret named `<fullname>-credentials` is generated in the cluster
   */
  readonly existingSecret?: string;
  /** Length of the generated passwords (letters and digits). @default 40 */
  readonly generatedPasswordLength?: number;
}

export interface DatabaseCredentialsProps extends CredentialsProps {
  /** The database whose passwords the Secret holds. */
  readonly database: DatabaseEndpoint;
  /** Image of the bootstrap Job, with `sh` and `kubectl`. @default docker.io/bitnamilegacy/kubectl:1.33.4 */
  readonly image?: string;
  /** Password keys needed besides the two (replication, the pooler's): generated, or required in a user-managed Secret. @default none */
  readonly extraPasswordKeys?: readonly string[];
  /** The pooler's Service, for the generated pooled connection string. @default none: no pooler */
  readonly pooler?: { readonly host: string; readonly port: number };
  /** The PostgreSQL major the chart starts: the Job stops a sync that would start another on existing data. */
  readonly postgresqlMajor: number;
}

/**
 * The one Secret the chart, the migration Job and the applications read. Generated in the
 * cluster on first install (never in git or dist/), kept afterwards; or user-managed by name,
 * in which case the same Job only verifies it. The Job runs before the database (its sync wave)
 * and refuses to invent a password for a volume that already holds data. It talks to the API
 * server only (DatabaseNetworkPolicy.allowKubernetesApi).
 */
export class DatabaseCredentials extends Construct {
  /** Name of the Secret holding the keys of CREDENTIAL_KEYS. */
  readonly secretName: string;
  readonly secret: kplus.ISecret;

  constructor(scope: Construct, id: string, props: DatabaseCredentialsProps) {
    super(scope, id);
    const { database } = props;
    const { namespace, releaseName } = database;
    const generated = props.existingSecret === undefined;
    const name = resourceName(releaseName, 'credentials');
    this.secretName = props.existingSecret ?? name;
    this.secret = kplus.Secret.fromSecretName(this, 'secret', this.secretName);
    const labels = standardLabels(releaseName, 'credentials');
    const metadata = { name, namespace, labels, annotations: syncWave(SYNC_WAVES.access) };

    const serviceAccount = new kplus.ServiceAccount(this, 'service-account', { metadata, automountToken: false });
    // Least privilege: read this one Secret, the primary's claim under either architecture and
    // the chart's StatefulSet (the major-version and volume guards); `create` cannot be narrowed by name.
    const otherDataClaim = chartObjects(releaseName, database.objects.read ? 0 : 1).dataClaim;
    const role = new kplus.Role(this, 'role', { metadata });
    role.allowGet(this.secret);
    role.allowGet(kplus.PersistentVolumeClaim.fromClaimName(this, 'data-claim', database.objects.dataClaim));
    role.allowGet(kplus.PersistentVolumeClaim.fromClaimName(this, 'other-data-claim', otherDataClaim));
    role.allowGet(namedResource('apps', 'statefulsets', database.objects.statefulSet));
    if (generated) {
      role.allowCreate(kplus.ApiResource.SECRETS);
      role.allowPatch(this.secret);
    }
    new kplus.RoleBinding(this, 'role-binding', { metadata, role }).addSubjects(serviceAccount);

    const passwordLength = props.generatedPasswordLength ?? 40;
    const env: Record<string, string> = {
      CREDENTIALS_MODE: generated ? 'generate' : 'verify',
      NAMESPACE: namespace,
      SECRET_NAME: this.secretName,
      DATA_CLAIM: database.objects.dataClaim,
      OTHER_DATA_CLAIM: otherDataClaim,
      STATEFULSET: database.objects.statefulSet,
      POSTGRESQL_MAJOR: String(props.postgresqlMajor),
      CHART_MAJORS: chartMajors(),
      PASSWORD_LENGTH: String(passwordLength),
      MIN_PASSWORD_LENGTH: String(MIN_SUPPLIED_PASSWORD_LENGTH),
      ADMIN_PASSWORD_KEY: CREDENTIAL_KEYS.adminPassword,
      PASSWORD_KEY: CREDENTIAL_KEYS.password,
      URI_KEY: CREDENTIAL_KEYS.uri,
      APP_USER: database.appUser,
      DATABASE_NAME: database.databaseName,
      DATABASE_HOST: database.host,
      DATABASE_PORT: String(database.port),
      // Clients of the URI verify the server where its certificate can be (sslrootcert: their copy of ca.crt).
      ...(database.tls ? { URI_QUERY: `?sslmode=${database.tls.caSecret ? 'verify-full' : 'require'}` } : {}),
      ...(props.extraPasswordKeys?.length ? { EXTRA_PASSWORD_KEYS: props.extraPasswordKeys.join(' ') } : {}),
      ...(props.pooler ? { POOLER_HOST: props.pooler.host, POOLER_PORT: String(props.pooler.port), POOLED_URI_KEY: CREDENTIAL_KEYS.pooledUri } : {}),
    };
    projectJob(this, 'bootstrap', {
      name,
      namespace,
      releaseName,
      component: 'credentials',
      serviceAccount,
      backoffLimit: 3,
      failJobOnExitCodes: failJobOnExitCodes(BOOTSTRAP),
      syncWave: SYNC_WAVES.credentials,
      // A failed check (a user-managed Secret missing) is fixed outside Git: the next sync must run
      // the Job again, not find the Failed one unchanged. It only ever reads or creates the Secret.
      rerunOnEverySync: true,
      container: {
        name: 'bootstrap',
        image: props.image ?? imageName(DEFAULT_KUBECTL_IMAGE),
        // The script travels in the Job itself: nothing to mount, nothing to drift.
        command: ['/bin/sh', '-c', bootstrapScript(), 'bootstrap'],
        envVariables: containerEnvironment(env),
      },
    });
  }
}

/** One object of a kind for RBAC (cdk8s-plus has no StatefulSet.fromName to narrow a rule by name). */
function namedResource(apiGroup: string, resourceType: string, resourceName: string): kplus.IApiResource {
  return { apiGroup, resourceType, resourceName };
}
