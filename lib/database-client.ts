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

/** Where and as whom a Job of ours connects, as libpq takes it. */
export interface DatabaseConnection {
  /** Host name of the database's Service. */
  readonly host: string;
  readonly port: number;
  /** The database to connect to. */
  readonly database: string;
  /** The role to log in as; its password comes from a Secret. */
  readonly user: string;
  /** libpq's sslmode, e.g. 'require' with TLS, 'prefer' without. */
  readonly sslMode: string;
}

/** The connection to `database` as `user` (default: the application user). */
export function connectionAs(database: DatabaseEndpoint, user = database.appUser): DatabaseConnection {
  return { host: database.host, port: database.port, database: database.databaseName, user, sslMode: database.tls ? 'require' : 'prefer' };
}

/** The libpq variables of a connection. */
export function libpqVariables(connection: DatabaseConnection): Record<string, string> {
  return {
    PGHOST: connection.host,
    PGPORT: String(connection.port),
    PGDATABASE: connection.database,
    PGUSER: connection.user,
    PGSSLMODE: connection.sslMode,
  };
}

/** A container's variables: plain values, plus PGPASSWORD from a key of the credentials Secret. */
export function containerEnvironment(env: Record<string, string>, password?: { secret: kplus.ISecret; key: string }): Record<string, kplus.EnvValue> {
  return {
    ...Object.fromEntries(Object.entries(env).map(([name, value]) => [name, kplus.EnvValue.fromValue(value)])),
    ...(password ? { PGPASSWORD: kplus.EnvValue.fromSecretValue(password) } : {}),
  };
}
