import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { ChartObjects } from '../chart';
import { DeploymentConfig } from '../config';
import { containerEnvironment, databaseHost } from '../database-client';
import { imageName, deploymentImages } from '../images';
import { projectJob } from '../job';
import { resourceName, standardLabels } from '../names';
import { SYNC_WAVES, syncWave } from '../sync-waves';
import { failJobOnExitCodes } from '../script-contract';
import { BOOTSTRAP, bootstrapScript } from './bootstrap-contract';
import { CREDENTIAL_KEYS, MIN_SUPPLIED_PASSWORD_LENGTH } from './keys';


export interface DatabaseCredentialsProps {
  readonly config: DeploymentConfig;
  readonly database: ChartObjects;
}

/**
 * The one Secret the chart, the migration Job and the applications read. Generated in the
 * cluster on first install (never in git or dist/), kept afterwards; or user-managed by name,
 * in which case the same Job only verifies it. The Job runs before the database (Argo CD
 * PreSync) and refuses to invent a password for a volume that already holds data.
 */
export class DatabaseCredentials extends Construct {
  /** Name of the Secret holding the keys of CREDENTIAL_KEYS. */
  readonly secretName: string;
  readonly secret: kplus.ISecret;

  constructor(scope: Construct, id: string, props: DatabaseCredentialsProps) {
    super(scope, id);
    const { config, database } = props;
    const generated = config.credentials.existingSecret === undefined;
    this.secretName = config.credentials.existingSecret ?? resourceName(config.releaseName, 'credentials');
    this.secret = kplus.Secret.fromSecretName(this, 'secret', this.secretName);

    const labels = standardLabels(config.releaseName, 'credentials');
    const annotations = syncWave(SYNC_WAVES.access);
    const name = resourceName(config.releaseName, 'credentials');
    const serviceAccount = new kplus.ServiceAccount(this, 'service-account', {
      metadata: { name, namespace: config.namespace, labels, annotations },
      automountToken: false,
    });
    // Least privilege: read this one Secret and this one claim; `create` cannot be narrowed by name.
    const role = new kplus.k8s.KubeRole(this, 'role', {
      metadata: { name, namespace: config.namespace, labels, annotations },
      rules: [
        { apiGroups: [''], resources: ['secrets'], resourceNames: [this.secretName], verbs: ['get'] },
        ...(generated ? [
          { apiGroups: [''], resources: ['secrets'], verbs: ['create'] },
          { apiGroups: [''], resources: ['secrets'], resourceNames: [this.secretName], verbs: ['patch'] },
          { apiGroups: [''], resources: ['persistentvolumeclaims'], resourceNames: [database.dataClaim], verbs: ['get'] },
        ] : []),
      ],
    });
    new kplus.k8s.KubeRoleBinding(this, 'role-binding', {
      metadata: { name, namespace: config.namespace, labels, annotations },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.name },
      subjects: [{ kind: 'ServiceAccount', name: serviceAccount.name, namespace: config.namespace }],
    });

    // The bootstrap talks only to the API server; its address differs per cluster, its port does not.
    new kplus.k8s.KubeNetworkPolicy(this, 'egress', {
      metadata: { name: resourceName(config.releaseName, 'credentials-egress'), namespace: config.namespace, labels, annotations },
      spec: {
        podSelector: { matchLabels: { 'app.kubernetes.io/part-of': labels['app.kubernetes.io/part-of'], 'app.kubernetes.io/component': 'credentials' } },
        policyTypes: ['Egress'],
        egress: [{ ports: [443, 6443].map((port) => ({ protocol: 'TCP', port: kplus.k8s.IntOrString.fromNumber(port) })) }],
      },
    });

    const scheme = config.tls.enabled ? '?sslmode=require' : '';
    const env: Record<string, string> = {
      CREDENTIALS_MODE: generated ? 'generate' : 'verify',
      NAMESPACE: config.namespace,
      SECRET_NAME: this.secretName,
      DATA_CLAIM: database.dataClaim,
      PASSWORD_LENGTH: String(config.credentials.generatedPasswordLength),
      MIN_PASSWORD_LENGTH: String(MIN_SUPPLIED_PASSWORD_LENGTH),
      ADMIN_PASSWORD_KEY: CREDENTIAL_KEYS.adminPassword,
      PASSWORD_KEY: CREDENTIAL_KEYS.password,
      URI_KEY: CREDENTIAL_KEYS.uri,
      APP_USER: config.appUser,
      DATABASE_NAME: config.databaseName,
      DATABASE_HOST: databaseHost(config, database),
      DATABASE_PORT: String(config.port),
      ...(scheme ? { URI_QUERY: scheme } : {}),
    };
    const image = imageName(deploymentImages(config).kubectl);
    projectJob(this, 'bootstrap', {
      name: resourceName(config.releaseName, 'credentials'),
      namespace: config.namespace,
      releaseName: config.releaseName,
      component: 'credentials',
      serviceAccount,
      backoffLimit: 3,
      failJobOnExitCodes: failJobOnExitCodes(BOOTSTRAP),
      syncWave: SYNC_WAVES.credentials,
      container: {
        name: 'bootstrap',
        image,
        // The script travels in the Job itself: nothing to mount, nothing to drift.
        command: ['/bin/sh', '-c', bootstrapScript(), 'bootstrap'],
        envVariables: containerEnvironment(env),
      },
    });
  }
}
