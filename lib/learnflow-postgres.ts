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
import { RestoreTemplate, backupPodLabels } from './backup/backup';
import { VerificationJob } from './verification/verification-job';
import { standardLabels } from './names';
import { SYNC_WAVES, syncWave } from './sync-waves';
import { finishManifest } from './job';
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
    this.database = chartObjects(this.config.releaseName);

    new kplus.Namespace(this, 'namespace', {
      metadata: {
        name: this.config.namespace,
        annotations: syncWave(SYNC_WAVES.namespace),
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
    });
    const networkPolicy = new DatabaseNetworkPolicy(this, 'network-policy', {
      database: endpoint,
      allowedNamespaces: props.allowedNamespaces,
      allowedCidrs: this.config.allowedCidrs,
      ...this.config.cluster,
      backupPods: this.config.backup.enabled ? backupPodLabels(this.config.releaseName) : undefined,
    });
    networkPolicy.allowKubernetesApi('credentials');
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
    new VerificationJob(this, 'verification', { ...jobs, waitForDatabaseSeconds: m.waitForDatabaseSeconds });
    if (this.config.backup.enabled) {
      new RestoreTemplate(this, 'restore', {
        database: endpoint,
        credentialsSecret: this.credentials.secret,
        image: imageName(images.postgresql),
        waitForDatabaseSeconds: props.migrations?.waitForDatabaseSeconds,
      });
    }
    this.helmValues = renderHelmValues(this.config, this.credentials.secretName);
  }

  override toJson(): any[] {
    return super.toJson().map(finishManifest);
  }
}
