import * as kplus from 'cdk8s-plus-27';
import { ChartObjects, chartObjects } from './chart';
import { DeploymentConfig } from './config';

/**
 * The database a deployment's Helm release runs, as our constructs see it: where it lives, what
 * the chart names its objects, and how a client logs in. The top-level construct derives it once
 * from the props; every construct that reaches the database takes it as its `database` prop.
 */
export interface DatabaseEndpoint {
  /** Namespace of the release and of everything rendered beside it. */
  readonly namespace: string;
  /** Helm release name: our objects' names and `app.kubernetes.io/instance` label derive from it. */
  readonly releaseName: string;
  /** The chart's objects: Service, pod, data claim, pod labels. */
  readonly objects: ChartObjects;
  /** The Service's in-cluster host name, `<service>.<namespace>.svc`. */
  readonly host: string;
  /** The Service's port. */
  readonly port: number;
  /** The database the application uses. */
  readonly databaseName: string;
  /** Its owner, as whom migrations and applications log in. */
  readonly appUser: string;
  /** The server speaks TLS: clients require it. */
  readonly tls: boolean;
}

export function databaseEndpoint(config: DeploymentConfig): DatabaseEndpoint {
  const objects = chartObjects(config.releaseName);
  return {
    namespace: config.namespace,
    releaseName: config.releaseName,
    objects,
    host: `${objects.service}.${config.namespace}.svc`,
    port: config.port,
    databaseName: config.databaseName,
    appUser: config.appUser,
    tls: config.tls.enabled,
  };
}

/** The libpq variables that point a container at `database`, logging in as `user`. */
export function libpqVariables(database: DatabaseEndpoint, user = database.appUser): Record<string, string> {
  return {
    PGHOST: database.host,
    PGPORT: String(database.port),
    PGDATABASE: database.databaseName,
    PGUSER: user,
    PGSSLMODE: database.tls ? 'require' : 'prefer',
  };
}

/** The database Service's in-cluster host name. */
export function databaseHost(config: DeploymentConfig, database: ChartObjects): string {
  return `${database.service}.${config.namespace}.svc`;
}

/** {@link libpqVariables} from the resolved config, for the migration and verification Jobs. */
export function libpqEnvironment(config: DeploymentConfig, database: ChartObjects, user = config.appUser): Record<string, string> {
  return libpqVariables({ ...databaseEndpoint(config), host: databaseHost(config, database) }, user);
}

/** A container's variables: plain values, plus PGPASSWORD from a key of the credentials Secret. */
export function containerEnvironment(env: Record<string, string>, password?: { secret: kplus.ISecret; key: string }): Record<string, kplus.EnvValue> {
  return {
    ...Object.fromEntries(Object.entries(env).map(([name, value]) => [name, kplus.EnvValue.fromValue(value)])),
    ...(password ? { PGPASSWORD: kplus.EnvValue.fromSecretValue(password) } : {}),
  };
}
