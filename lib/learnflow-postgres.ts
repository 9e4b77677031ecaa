import { Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { DatabaseCertificate } from './certificate';
import { chartObjects, ChartObjects } from './chart';
import { DeploymentConfig, LearnflowPostgresProps, resolveConfig } from './config';
import { DatabaseCredentials } from './credentials/credentials';
import { connectionAs, databaseEndpoint } from './database-client';
import { BitnamiPostgresqlValues, renderHelmValues } from './helm-values';
import { deploymentImages, imageName } from './images';
import { MigrationJob } from './migrations/migration-job';
import { Migration } from './migrations/types';
import { DatabaseNetworkPolicy } from './network-policy';
import { RestoreTemplate, dumpCommand, DUMP_DIR } from './backup/backup';
import { BACKUP } from './backup/script-contracts';
import { BASEBACKUP_COMMAND, BASEBACKUP_FAIL_JOB_ON, BackupCronJob, BackupStorage, KEEP_DATA_ANNOTATIONS, PitrRestoreTemplate, baseBackupEnvironment } from './pitr/backups';
import { offsiteSettings } from './pitr/chart-values';
import { CREDENTIAL_KEYS, passwordKeys } from './credentials/keys';
import { libpqVariables } from './database-client';
import { failJobOnExitCodes } from './script-contract';
import { VerificationJob } from './verification/verification-job';
import { resourceName, standardLabels } from './names';
import { Pooler } from './pooling/pooler';
import { SYNC_WAVES, syncWave } from './sync-waves';
import { finishManifest } from './job';
import { forKubernetes } from './kubernetes';
import { targetMajor } from './major-version';
import { validateProps, ValidationError } from './validation';

export interface LearnflowPostgresChartProps extends LearnflowPostgresProps {
  /** The parsed migration set (lib/migrations/files.ts). */
  readonly migrationSet: readonly Migration[];
}

/**
 * Everything one deployment needs besides the Helm release: namespace, credentials,
 * NetworkPolicy and migration Job, plus the chart values it renders alongside.
 * Every manifest passes through finishManifest() (Pod Security "restricted"), and every Job is
 * named after its spec (projectJob).
 */
export class LearnflowPostgresChart extends Chart {
  readonly config: DeploymentConfig;
  readonly database: ChartObjects;
  readonly helmValues: BitnamiPostgresqlValues;
  readonly credentials: DatabaseCredentials;
  readonly migrations: MigrationJob;

  constructor(scope: Construct, id: string, props: LearnflowPostgresChartProps) {
    const { migrationSet: _, ...deployment } = props;
    const problems = validateProps(deployment);
    if (problems.length > 0) throw new ValidationError(id, problems);
    super(scope, id, { disableResourceNameHashes: true });
    this.config = resolveConfig(props);
    this.database = chartObjects(this.config.releaseName, this.config.readReplicas?.count ?? 0);

    new kplus.Namespace(this, 'namespace', {
      metadata: {
        name: this.config.namespace,
        // It holds the data claims and the generated credentials: never pruned, never deleted with the Application.
        annotations: { ...syncWave(SYNC_WAVES.namespace), ...KEEP_DATA_ANNOTATIONS },
        labels: {
          ...standardLabels(this.config.releaseName, 'namespace'),
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/warn': 'restricted',
          'pod-security.kubernetes.io/audit': 'restricted',
        },
      },
    });
    const endpoint = databaseEndpoint(this.config);
    const images = deploymentImages(this.config);
    const poolerService = this.config.pooler ? { host: `${resourceName(this.config.releaseName, 'pooler')}.${this.config.namespace}.svc`, port: this.config.pooler.port } : undefined;
    const { issuer, certificatesSecret, extraDnsNames } = this.config.tls;
    if (issuer && certificatesSecret) {
      new DatabaseCertificate(this, 'certificate', {
        database: endpoint, issuer, secretName: certificatesSecret, clusterDomain: this.config.cluster.domain, extraDnsNames,
      });
    }
    this.credentials = new DatabaseCredentials(this, 'credentials', {
      database: endpoint,
      ...props.credentials,
      image: imageName(images.kubectl),
      // Besides the two every Secret holds.
      extraPasswordKeys: passwordKeys(this.config).slice(2),
      pooler: poolerService,
      postgresqlMajor: targetMajor(this.config),
    });
    const networkPolicy = new DatabaseNetworkPolicy(this, 'network-policy', {
      database: endpoint,
      allowedNamespaces: props.allowedNamespaces,
      allowedCidrs: this.config.allowedCidrs,
      ...this.config.cluster,
    });
    networkPolicy.allowKubernetesApi('credentials');
    if (this.config.readReplicas) networkPolicy.allowReplication();
    const jobs = {
      namespace: this.config.namespace,
      releaseName: this.config.releaseName,
      image: imageName(images.postgresql),
      connection: connectionAs(endpoint),
      credentialsSecret: this.credentials.secret,
      migrations: props.migrationSet,
    };
    const m = this.config.migrations;
    this.migrations = new MigrationJob(this, 'migrations', { ...jobs, ...m });
    const read = endpoint.objects.read;
    new VerificationJob(this, 'verification', {
      ...jobs,
      waitForDatabaseSeconds: m.waitForDatabaseSeconds,
      // Each replica by its own pod's name (the read Service would pick one at random).
      replicas: read && this.config.readReplicas
        ? { hosts: read.pods.map((pod) => `${pod}.${read.headlessService}.${endpoint.namespace}.svc`), maxLagBytes: this.config.readReplicas.maxLagBytes }
        : undefined,
    });
    this.addBackups(endpoint, imageName(images.postgresql), networkPolicy, props.migrations?.waitForDatabaseSeconds);
    if (this.config.pooler) {
      new Pooler(this, 'pooler', {
        database: endpoint,
        pooler: this.config.pooler,
        image: imageName(images.pgbouncer),
        databaseImage: imageName(images.postgresql),
        credentialsSecret: this.credentials.secret,
        networkPolicy,
        allowedCidrs: this.config.allowedCidrs,
        tls: this.config.tls,
        waitForDatabaseSeconds: m.waitForDatabaseSeconds,
      });
    }
    this.helmValues = renderHelmValues(this.config, this.credentials.secretName);
  }

  /**
   * Dumps, archiving, base backups and the restores (README: Backups and restore, Point-in-time
   * recovery): one backup volume the database pod mounts, the CronJobs beside it, the templates.
   */
  private addBackups(endpoint: ReturnType<typeof databaseEndpoint>, image: string, networkPolicy: DatabaseNetworkPolicy, waitForDatabaseSeconds?: number): void {
    const { backup, pitr, backupVolume } = this.config;
    if (!backupVolume) return;
    const storage = new BackupStorage(this, 'backup-storage', { namespace: endpoint.namespace, releaseName: endpoint.releaseName, size: backupVolume.size, storageClass: backupVolume.storageClass });
    const superuser = connectionAs(endpoint, 'postgres');
    const connection = { libpq: libpqVariables(superuser), secretName: this.credentials.secretName, passwordKey: CREDENTIAL_KEYS.adminPassword, caSecret: superuser.caSecret };
    const common = { namespace: endpoint.namespace, releaseName: endpoint.releaseName, image, connection, storage: storage.names, databasePodLabels: endpoint.objects.podLabels };
    if (backup.enabled) {
      new BackupCronJob(this, 'dump', { ...common, kind: 'dump', schedule: backup.schedule, command: dumpCommand(endpoint.databaseName, backup.keep), env: { PGDUMP_DIR: DUMP_DIR }, failJobOnExitCodes: failJobOnExitCodes(BACKUP) });
      new RestoreTemplate(this, 'restore', { database: endpoint, credentialsSecret: this.credentials.secret, image, waitForDatabaseSeconds, backupClaim: storage.names.claim });
    }
    const offsite = offsiteSettings(this.config);
    if (pitr.enabled) {
      new BackupCronJob(this, 'basebackup', {
        ...common, kind: 'basebackup', schedule: pitr.baseBackupSchedule, command: [...BASEBACKUP_COMMAND],
        env: baseBackupEnvironment(pitr.baseBackupKeep, waitForDatabaseSeconds ?? this.config.migrations.waitForDatabaseSeconds), failJobOnExitCodes: BASEBACKUP_FAIL_JOB_ON,
      });
      new PitrRestoreTemplate(this, 'pitr-restore', {
        namespace: endpoint.namespace, releaseName: endpoint.releaseName, image, dataClaim: endpoint.objects.dataClaim, storage: storage.names,
        libpq: { PGHOST: endpoint.host, PGPORT: String(endpoint.port) }, offsite,
      });
    }
    if (offsite) networkPolicy.allowObjectStore(offsite);
  }

  override toJson(): any[] {
    return super.toJson().map(finishManifest).map((m) => forKubernetes(m, this.config.kubernetesVersion));
  }
}
