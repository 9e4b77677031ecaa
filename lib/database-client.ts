import * as kplus from 'cdk8s-plus-27';
import { ChartObjects } from './chart';
import { DeploymentConfig } from './config';

/** The database Service's in-cluster host name. */
export function databaseHost(config: DeploymentConfig, database: ChartObjects): string {
  return `${database.service}.${config.namespace}.svc`;
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

/** The release's database as the given user. */
export function databaseConnection(config: DeploymentConfig, database: ChartObjects, user = config.appUser): DatabaseConnection {
  return { host: databaseHost(config, database), port: config.port, database: config.databaseName, user, sslMode: config.tls.enabled ? 'require' : 'prefer' };
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

/** The libpq variables that point a Job of ours at the release's database, as `user`. */
export function libpqEnvironment(config: DeploymentConfig, database: ChartObjects, user = config.appUser): Record<string, string> {
  return libpqVariables(databaseConnection(config, database, user));
}

/** A container's variables: plain values, plus PGPASSWORD from a key of the credentials Secret. */
export function containerEnvironment(env: Record<string, string>, password?: { secret: kplus.ISecret; key: string }): Record<string, kplus.EnvValue> {
  return {
    ...Object.fromEntries(Object.entries(env).map(([name, value]) => [name, kplus.EnvValue.fromValue(value)])),
    ...(password ? { PGPASSWORD: kplus.EnvValue.fromSecretValue(password) } : {}),
  };
}
