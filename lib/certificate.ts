import { Construct } from 'constructs';
import {
  Certificate,
  CertificateSpecPrivateKeyAlgorithm,
  CertificateSpecPrivateKeyRotationPolicy,
  CertificateSpecUsages,
} from '../imports/certmanager-certificate-cert-manager.io';
import { CertificateIssuerProps } from './config';
import { DatabaseEndpoint } from './database-client';
import { resourceName, standardLabels } from './names';
import { SYNC_WAVES, syncWave } from './sync-waves';

export interface DatabaseCertificateProps {
  /** The database whose Service the certificate names. */
  readonly database: DatabaseEndpoint;
  readonly issuer: CertificateIssuerProps;
  /** The Secret cert-manager writes (tls.crt, tls.key, ca.crt), which the chart mounts. */
  readonly secretName: string;
  /** The cluster's DNS domain. @default 'cluster.local' */
  readonly clusterDomain?: string;
  /** Names besides the Service's, e.g. the LoadBalancer's. @default [] */
  readonly extraDnsNames?: readonly string[];
}

/**
 * Every name a client in the cluster reaches the database Service by: short (from its own
 * namespace; the chart's backup CronJob uses it), namespaced, `.svc` (our Jobs use it) and the
 * fully qualified cluster-local form.
 */
export function serviceDnsNames(database: DatabaseEndpoint, clusterDomain = 'cluster.local'): string[] {
  const { service } = database.objects;
  return [service, `${service}.${database.namespace}`, `${service}.${database.namespace}.svc`, `${service}.${database.namespace}.svc.${clusterDomain}`];
}

/**
 * The server's certificate, issued and renewed by cert-manager (the CRD imported into imports/
 * from cert-manager v1.21.1), for the Service's names. Its Secret holds the issuer's CA as
 * `ca.crt`, which our Jobs verify the server against. A new key at every renewal; in the
 * credentials wave, so that it is Ready before the database starts.
 */
export class DatabaseCertificate extends Construct {
  readonly secretName: string;
  readonly dnsNames: readonly string[];

  constructor(scope: Construct, id: string, props: DatabaseCertificateProps) {
    super(scope, id);
    const { namespace, releaseName } = props.database;
    this.secretName = props.secretName;
    this.dnsNames = [...serviceDnsNames(props.database, props.clusterDomain), ...(props.extraDnsNames ?? [])];
    new Certificate(this, 'certificate', {
      metadata: { name: resourceName(releaseName, 'tls'), namespace, labels: standardLabels(releaseName, 'tls'), annotations: syncWave(SYNC_WAVES.credentials) },
      spec: {
        secretName: props.secretName,
        dnsNames: [...this.dnsNames],
        issuerRef: { name: props.issuer.name, kind: props.issuer.kind ?? 'Issuer', group: props.issuer.group ?? 'cert-manager.io' },
        privateKey: { algorithm: CertificateSpecPrivateKeyAlgorithm.ECDSA, size: 256, rotationPolicy: CertificateSpecPrivateKeyRotationPolicy.ALWAYS },
        usages: [CertificateSpecUsages.DIGITAL_SIGNATURE, CertificateSpecUsages.SERVER_AUTH],
      },
    });
  }
}
