import * as kplus from 'cdk8s-plus-27';
import { ChartObjects } from './chart';
import { DeploymentConfig } from './config';

/** The database Service's in-cluster host name. */
export function databaseHost(config: DeploymentConfig, database: ChartObjects): string {
  return `${database.service}.${config.namespace}.svc`;
}

/** The libpq variables that point a Job of ours at the release's database, as `user`. */
export function libpqEnvironment(config: DeploymentConfig, database: ChartObjects, user = config.appUser): Record<string, string> {
  return {
    PGHOST: databaseHost(config, database),
    PGPORT: String(config.port),
    PGDATABASE: config.databaseName,
    PGUSER: user,
    PGSSLMODE: config.tls.enabled ? 'require' : 'prefer',
  };
}

/** A container's variables: plain values, plus PGPASSWORD from a key of the credentials Secret. */
export function containerEnvironment(env: Record<string, string>, password?: { secret: kplus.ISecret; key: string }): Record<string, kplus.EnvValue> {
  return {
    ...Object.fromEntries(Object.entries(env).map(([name, value]) => [name, kplus.EnvValue.fromValue(value)])),
    ...(password ? { PGPASSWORD: kplus.EnvValue.fromSecretValue(password) } : {}),
  };
}
