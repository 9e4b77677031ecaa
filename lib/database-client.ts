import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { ChartObjects, chartObjects } from './chart';
import { DeploymentConfig } from './config';
import { LOGIN_PATHS, LOGIN_VOLUMES, PASSWORD_FILE, passfileScript } from './credentials/passfile-contract';

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
  /**
   * The server speaks TLS; with `caSecret`, a Secret whose `ca.crt` signed its certificate, so
   * that clients verify it (sslmode=verify-full); without, clients can only require TLS.
   * @default none: no TLS
   */
  readonly tls?: { readonly caSecret?: string };
}

export function databaseEndpoint(config: DeploymentConfig): DatabaseEndpoint {
  const objects = chartObjects(config.releaseName, config.readReplicas?.count ?? 0);
  return {
    namespace: config.namespace,
    releaseName: config.releaseName,
    objects,
    host: `${objects.service}.${config.namespace}.svc`,
    port: config.port,
    databaseName: config.databaseName,
    appUser: config.appUser,
    tls: config.tls.enabled ? { caSecret: config.tls.certificatesSecret } : undefined,
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
  /** libpq's sslmode: 'verify-full' with a certificate to verify, 'require' with TLS only, 'prefer' without. */
  readonly sslMode: 'verify-full' | 'require' | 'prefer';
  /** With verify-full: the Secret whose `ca.crt` the client verifies the server's certificate against. */
  readonly caSecret?: string;
}

/** The connection to `database` as `user` (default: the application user). */
export function connectionAs(database: DatabaseEndpoint, user = database.appUser): DatabaseConnection {
  const { host, port, databaseName } = database;
  const base = { host, port, database: databaseName, user };
  if (database.tls?.caSecret) return { ...base, sslMode: 'verify-full', caSecret: database.tls.caSecret };
  return { ...base, sslMode: database.tls ? 'require' : 'prefer' };
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

/** A container's variables as cdk8s-plus takes them: plain values only, never a Secret's. */
export function containerEnvironment(env: Record<string, string>): Record<string, kplus.EnvValue> {
  return Object.fromEntries(Object.entries(env).map(([name, value]) => [name, kplus.EnvValue.fromValue(value)]));
}

/** The name of the init container that writes the password file. */
export const LOGIN_CONTAINER = 'login';

export interface DatabaseLoginProps {
  /** The connection the password is for: the password file's line names exactly it. */
  readonly connection: DatabaseConnection;
  /** The key of the credentials Secret holding the role's password. */
  readonly password: { readonly secret: kplus.ISecret; readonly key: string };
  /** Image of the init container, with `sh` and `sed`: the Job's own. */
  readonly image: string;
  /** More hosts the same login is for, on any port (the read replicas a Job checks). @default none */
  readonly extraHosts?: readonly string[];
}

/** What a pod needs to log in: its volumes, the Job container's mounts and variables, the init container. */
export interface DatabaseLogin {
  readonly volumes: readonly kplus.Volume[];
  readonly mounts: readonly kplus.VolumeMount[];
  /** PGPASSFILE, and PGSSLROOTCERT when the server's certificate is verified, for the Job's container. */
  readonly env: Readonly<Record<string, string>>;
  readonly initContainer: kplus.ContainerProps;
}

/**
 * A Job's login through libpq's password file instead of PGPASSWORD: an init container mounts
 * the one key of the credentials Secret and writes `host:port:database:user:password` (mode
 * 0600: libpq ignores a file others may read, and a Secret's files are always readable by the
 * pod's fsGroup) into a memory-backed volume the Job's container mounts read-only as PGPASSFILE.
 * With verify-full, the Job's container also mounts `ca.crt` of the certificate's Secret (that
 * key alone: never the server's key) as PGSSLROOTCERT.
 */
export function databaseLogin(scope: Construct, id: string, props: DatabaseLoginProps): DatabaseLogin {
  const secret = kplus.Volume.fromSecret(scope, `${id}-secret`, props.password.secret, {
    name: LOGIN_VOLUMES.key,
    items: { [props.password.key]: { path: 'password' } },
    defaultMode: 0o440,
  });
  const login = kplus.Volume.fromEmptyDir(scope, `${id}-passfile`, LOGIN_VOLUMES.passfile, { medium: kplus.EmptyDirMedium.MEMORY, sizeLimit: Size.mebibytes(1) });
  const passfile = `${LOGIN_PATHS.passfileDir}/pgpass`;
  const ca = props.connection.caSecret === undefined ? undefined
    : kplus.Volume.fromSecret(scope, `${id}-ca`, kplus.Secret.fromSecretName(scope, `${id}-ca-secret`, props.connection.caSecret), {
      name: LOGIN_VOLUMES.ca,
      items: { 'ca.crt': { path: 'ca.crt' } },
      defaultMode: 0o444,
    });
  return {
    volumes: [secret, login, ...(ca ? [ca] : [])],
    mounts: [
      { path: LOGIN_PATHS.passfileDir, volume: login, readOnly: true },
      ...(ca ? [{ path: LOGIN_PATHS.caDir, volume: ca, readOnly: true }] : []),
    ],
    env: { PGPASSFILE: passfile, ...(ca ? { PGSSLROOTCERT: `${LOGIN_PATHS.caDir}/ca.crt` } : {}) },
    initContainer: {
      name: LOGIN_CONTAINER,
      image: props.image,
      command: ['/bin/sh', '-c', passfileScript(), 'login'],
      envVariables: containerEnvironment({
        ...libpqVariables(props.connection),
        PASSWORD_FILE,
        PGPASSFILE: passfile,
        ...(props.extraHosts?.length ? { PASSFILE_EXTRA_HOSTS: props.extraHosts.join(' ') } : {}),
      }),
      volumeMounts: [
        { path: LOGIN_PATHS.keyDir, volume: secret, readOnly: true },
        { path: LOGIN_PATHS.passfileDir, volume: login },
      ],
    },
  };
}
