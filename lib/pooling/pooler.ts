import { Duration, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { DeploymentConfig } from '../config';
import { CREDENTIAL_KEYS } from '../credentials/keys';
import { DatabaseEndpoint, connectionAs, containerEnvironment, databaseLogin, libpqVariables } from '../database-client';
import { projectJob } from '../job';
import { DATABASE_CLIENT_LABEL, contentHash, resourceName, standardLabels } from '../names';
import { DatabaseNetworkPolicy } from '../network-policy';
import { failJobOnExitCodes } from '../script-contract';
import { SYNC_WAVES, syncWave } from '../sync-waves';
import { POOLER_AUTH, USERLIST, poolerAuthScript, userlistScript } from './contracts';
import { PGBOUNCER_INI, POOLER_PATHS, USERLIST_FILE, renderPgbouncerIni } from './pgbouncer-ini';
import { PoolerConfig } from './props';

export interface PoolerProps {
  /** The database the pooler fronts: its primary. */
  readonly database: DatabaseEndpoint;
  readonly pooler: PoolerConfig;
  /** `registry/repository:tag` of PgBouncer's image (with `sh` and `sed`). */
  readonly image: string;
  /** The database's image, for the setup Job (psql). */
  readonly databaseImage: string;
  readonly credentialsSecret: kplus.ISecret;
  readonly networkPolicy: DatabaseNetworkPolicy;
  /** The client networks a LoadBalancer admits. */
  readonly allowedCidrs: readonly string[];
  /** The database's TLS: verify-full against `certificatesSecret`'s ca.crt when there is one. */
  readonly tls: DeploymentConfig['tls'];
  readonly waitForDatabaseSeconds: number;
}

/**
 * PgBouncer in front of the primary: a Deployment of `replicas` pods with its configuration, its
 * Service and a PodDisruptionBudget, and a Job that sets up the role PgBouncer looks users up
 * with. Clients log in as the database's own users; the pooler holds only its lookup role's
 * password (the credentials Secret's `pooler-password`, as a file). The NetworkPolicies let the
 * allowed namespaces and client networks reach it, and it reach the database.
 */
export class Pooler extends Construct {
  /** The Service applications connect to: `<fullname>-pooler`. */
  readonly service: string;
  readonly host: string;
  readonly port: number;

  constructor(scope: Construct, id: string, props: PoolerProps) {
    super(scope, id);
    const { database, pooler } = props;
    const { namespace, releaseName } = database;
    this.service = resourceName(releaseName, 'pooler');
    this.host = `${this.service}.${namespace}.svc`;
    this.port = pooler.port;
    const labels = standardLabels(releaseName, 'pooler');
    const metadata = (annotations = syncWave(SYNC_WAVES.migrations)) => ({ name: this.service, namespace, labels, annotations });

    // The same CA every client of ours verifies against (the issuer's Certificate Secret with tls.issuer).
    const caSecret = database.tls?.caSecret;
    const caFile = caSecret ? `${POOLER_PATHS.caDir}/ca.crt` : undefined;
    const iniText = renderPgbouncerIni({
      databaseName: database.databaseName,
      serverHost: database.host,
      serverPort: database.port,
      listenPort: POOLER_CONTAINER_PORT,
      poolMode: pooler.poolMode,
      maxClientConnections: pooler.maxClientConnections,
      defaultPoolSize: pooler.defaultPoolSize,
      serverSslMode: caFile ? 'verify-full' : props.tls.enabled ? 'require' : 'prefer',
      serverCaFile: caFile,
    });
    const config = new kplus.ConfigMap(this, 'config', { metadata: metadata(), data: { [PGBOUNCER_INI]: iniText } });

    const deployment = new kplus.Deployment(this, 'deployment', {
      metadata: metadata(),
      replicas: pooler.replicas,
      // A new pgbouncer.ini rolls the pods (PgBouncer reads its file at start).
      podMetadata: { labels, annotations: { 'learnflow.io/config-hash': contentHash([iniText]) } },
      securityContext: { ensureNonRoot: true },
      automountServiceAccountToken: false,
    });
    // Pods on different nodes where possible (preferred, so a one-node cluster still runs them all).
    deployment.scheduling.spread({ topology: kplus.Topology.HOSTNAME, weight: 100 });
    const configVolume = kplus.Volume.fromConfigMap(this, 'config-volume', config, { name: 'config' });
    const authVolume = kplus.Volume.fromEmptyDir(this, 'auth-volume', 'auth', { medium: kplus.EmptyDirMedium.MEMORY, sizeLimit: Size.mebibytes(1) });
    const secretVolume = kplus.Volume.fromSecret(this, 'secret-volume', props.credentialsSecret, {
      name: 'pooler-password',
      items: { [CREDENTIAL_KEYS.poolerPassword]: { path: 'password' } },
      defaultMode: 0o440,
    });
    const passwordFile = `${POOLER_PATHS.keyDir}/password`;
    deployment.addInitContainer({
      name: 'login',
      image: props.image,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      command: ['/bin/sh', '-c', userlistScript(), 'login'],
      envVariables: containerEnvironment({ [USERLIST.knobs.passwordFile.env]: passwordFile, [USERLIST.knobs.userlistFile.env]: USERLIST_FILE }),
      resources: { cpu: { request: kplus.Cpu.millis(10), limit: kplus.Cpu.millis(100) }, memory: { request: Size.mebibytes(16), limit: Size.mebibytes(64) } },
      volumeMounts: [
        { path: POOLER_PATHS.keyDir, volume: secretVolume, readOnly: true },
        { path: POOLER_PATHS.authDir, volume: authVolume },
      ],
    });
    const mounts: kplus.VolumeMount[] = [
      { path: POOLER_PATHS.configDir, volume: configVolume, readOnly: true },
      { path: POOLER_PATHS.authDir, volume: authVolume, readOnly: true },
    ];
    if (caFile) {
      const ca = kplus.Volume.fromSecret(this, 'ca-volume', kplus.Secret.fromSecretName(this, 'tls-secret', caSecret!), {
        name: 'server-ca', items: { 'ca.crt': { path: 'ca.crt' } }, defaultMode: 0o444,
      });
      mounts.push({ path: POOLER_PATHS.caDir, volume: ca, readOnly: true });
    }
    const probe = kplus.Probe.fromTcpSocket({ port: POOLER_CONTAINER_PORT, periodSeconds: Duration.seconds(10), timeoutSeconds: Duration.seconds(3) });
    deployment.addContainer({
      name: 'pgbouncer',
      image: props.image,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      // PgBouncer itself with our file, not the image's entrypoint (which writes its own configuration).
      command: ['pgbouncer', `${POOLER_PATHS.configDir}/${PGBOUNCER_INI}`],
      ports: [{ number: POOLER_CONTAINER_PORT, name: 'pgbouncer' }],
      readiness: probe,
      liveness: kplus.Probe.fromTcpSocket({ port: POOLER_CONTAINER_PORT, periodSeconds: Duration.seconds(20), failureThreshold: 6 }),
      resources: { cpu: { request: kplus.Cpu.millis(100), limit: kplus.Cpu.millis(1000) }, memory: { request: Size.mebibytes(64), limit: Size.mebibytes(256) } },
      volumeMounts: mounts,
    });

    const external = pooler.serviceType !== 'ClusterIP';
    new kplus.k8s.KubeService(this, 'service', {
      metadata: metadata(),
      spec: {
        type: pooler.serviceType,
        selector: labels,
        ports: [{ name: 'pgbouncer', port: pooler.port, targetPort: kplus.k8s.IntOrString.fromNumber(POOLER_CONTAINER_PORT), ...(pooler.nodePort ? { nodePort: pooler.nodePort } : {}) }],
        // As for the database: clients' addresses kept, so that the client networks match them.
        ...(external ? { externalTrafficPolicy: 'Local' } : {}),
        ...(pooler.serviceType === 'LoadBalancer' ? { loadBalancerSourceRanges: [...props.allowedCidrs] } : {}),
      },
    });
    if (pooler.replicas >= 2) {
      new kplus.k8s.KubePodDisruptionBudget(this, 'pdb', {
        metadata: metadata(),
        spec: { maxUnavailable: kplus.k8s.IntOrString.fromNumber(1), selector: { matchLabels: labels } },
      });
    }

    // Who reaches it: the applications; it reaches the database, and DNS.
    props.networkPolicy.allowClients('pooler', [{ port: POOLER_CONTAINER_PORT }]);
    props.networkPolicy.allowDatabaseClient('pooler');

    // The lookup role, set up as the superuser by a Job (the pooler never holds the superuser's password).
    const connection = connectionAs(database, 'postgres');
    const poolerSecret = kplus.Volume.fromSecret(this, 'job-secret', props.credentialsSecret, {
      name: 'pooler-password', items: { [CREDENTIAL_KEYS.poolerPassword]: { path: 'password' } }, defaultMode: 0o440,
    });
    projectJob(this, 'auth', {
      name: resourceName(releaseName, 'pooler-auth'),
      namespace,
      releaseName,
      // A component of its own: the pooler's Service and policies select component `pooler`,
      // and a running Job pod must never become one of the Service's endpoints.
      component: 'pooler-auth',
      backoffLimit: 6,
      podLabels: { [DATABASE_CLIENT_LABEL]: 'true' },
      failJobOnExitCodes: failJobOnExitCodes(POOLER_AUTH),
      syncWave: SYNC_WAVES.migrations,
      volumes: [poolerSecret],
      container: {
        name: 'pooler-auth',
        image: props.databaseImage,
        command: ['/bin/sh', '-c', poolerAuthScript(), 'pooler-auth'],
        envVariables: containerEnvironment({
          ...libpqVariables(connection),
          [POOLER_AUTH.knobs.passwordFile.env]: passwordFile,
          [POOLER_AUTH.knobs.dbWaitSeconds.env]: String(props.waitForDatabaseSeconds),
        }),
        volumeMounts: [{ path: POOLER_PATHS.keyDir, volume: poolerSecret, readOnly: true }],
      },
      login: databaseLogin(this, 'login', { connection, password: { secret: props.credentialsSecret, key: CREDENTIAL_KEYS.adminPassword }, image: props.databaseImage }),
    });
  }
}

/** PgBouncer's port in the pod. */
export const POOLER_CONTAINER_PORT = 6432;
