// Reading a deployment's manifests (ours and the chart's, see ./chart-render.ts) for what refers
// to what: pod templates and their labels, Secret references, the database address each client
// uses, label selectors, claims, images. Pure functions over manifests, for any tier:
//
//   for (const ref of secretRefs(c.all)) expect(secretsIn(c.all)...)
//   podTemplates(c.chart).filter((t) => selects(policy.spec.podSelector, t.labels))
import { Manifest } from './dist';
import { selects as labelSelectorHolds } from './network-policy-evaluator';

/** A pod template of a workload (or a Pod): where it is, its labels and its spec. */
export interface PodTemplate {
  /** `Kind/name` of the object that holds it. */
  readonly owner: string;
  readonly kind: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly spec: Record<string, any>;
}

export const refOf = (m: Manifest) => `${m.kind}/${m.metadata.name}`;

/** Every pod template of `manifests`: StatefulSets, Deployments, DaemonSets, Jobs, CronJobs' jobs, Pods. */
export function podTemplates(manifests: readonly Manifest[]): PodTemplate[] {
  return manifests.flatMap((m): PodTemplate[] => {
    const template = m.kind === 'CronJob' ? m.spec?.jobTemplate?.spec?.template
      : ['StatefulSet', 'Deployment', 'DaemonSet', 'ReplicaSet', 'Job'].includes(m.kind) ? m.spec?.template
        : m.kind === 'Pod' ? { metadata: m.metadata, spec: m.spec } : undefined;
    return template ? [{ owner: refOf(m), kind: m.kind, labels: template.metadata?.labels ?? {}, spec: template.spec ?? {} }] : [];
  });
}

/** Every container of a pod spec, init containers first. */
export const containersOf = (spec: Record<string, any>): Record<string, any>[] => [...(spec.initContainers ?? []), ...(spec.containers ?? [])];

/** A reference to a Secret: from an env var (with its key), envFrom, or a volume (with the keys it projects, if any). */
export interface SecretRef {
  readonly owner: string;
  /** `env PGPASSWORD`, `volume certificates`, `envFrom`. */
  readonly via: string;
  readonly secret: string;
  readonly key?: string;
  readonly optional: boolean;
}

/** Every Secret the pods of `manifests` read, with the key where one is named. */
export function secretRefs(manifests: readonly Manifest[]): SecretRef[] {
  return podTemplates(manifests).flatMap(({ owner, spec }) => [
    ...containersOf(spec).flatMap((c) => [
      ...(c.env ?? []).filter((e: any) => e.valueFrom?.secretKeyRef).map((e: any): SecretRef => ({
        owner, via: `env ${e.name}`, secret: e.valueFrom.secretKeyRef.name, key: e.valueFrom.secretKeyRef.key, optional: e.valueFrom.secretKeyRef.optional === true,
      })),
      ...(c.envFrom ?? []).filter((e: any) => e.secretRef).map((e: any): SecretRef => ({ owner, via: 'envFrom', secret: e.secretRef.name, optional: e.secretRef.optional === true })),
    ]),
    // A file of a mounted Secret named in an env var (`POSTGRES_PASSWORD_FILE=/opt/…/secrets/password`): that key.
    ...containersOf(spec).flatMap((c) => (c.env ?? []).filter((e: any) => typeof e.value === 'string' && e.value.startsWith('/')).flatMap((e: any): SecretRef[] => {
      const mount = (c.volumeMounts ?? []).find((m: any) => e.value.startsWith(`${m.mountPath.replace(/\/$/, '')}/`));
      const volume = mount && (spec.volumes ?? []).find((v: any) => v.name === mount.name);
      if (!volume?.secret) return [];
      const file = e.value.slice(mount.mountPath.replace(/\/$/, '').length + 1).split('/')[0];
      const item = (volume.secret.items ?? []).find((i: any) => i.path === file);
      return [{ owner, via: `env ${e.name} (file)`, secret: volume.secret.secretName, key: item ? item.key : file, optional: volume.secret.optional === true }];
    })),
    ...(spec.volumes ?? []).flatMap((v: any): SecretRef[] => {
      const sources = v.secret ? [v.secret] : (v.projected?.sources ?? []).map((s: any) => s.secret && { secretName: s.secret.name, ...s.secret }).filter(Boolean);
      return sources.flatMap((s: any) => {
        const keys: (string | undefined)[] = s.items?.length ? s.items.map((i: any) => i.key) : [undefined];
        return keys.map((key) => ({ owner, via: `volume ${v.name}`, secret: s.secretName ?? s.name, key, optional: s.optional === true }));
      });
    }),
  ]);
}

/**
 * Whether a Kubernetes label selector (matchLabels and matchExpressions) selects `labels`; a
 * missing selector selects nothing here (the evaluator's reading, everything, is for policy peers).
 */
export function selects(selector: Parameters<typeof labelSelectorHolds>[0], labels: Readonly<Record<string, string>>): boolean {
  return selector !== undefined && labelSelectorHolds(selector, labels);
}

/** The pod templates of `manifests` that `selector` selects. */
export const selectedPods = (selector: Parameters<typeof selects>[0], manifests: readonly Manifest[]) =>
  podTemplates(manifests).filter((t) => selects(selector, t.labels));

/** A database client: a container with libpq's PGHOST and PGPORT. */
export interface DatabaseClient {
  readonly owner: string;
  readonly container: string;
  readonly host: string;
  readonly port: string;
}

/** Every container of `manifests` that sets PGHOST (our Jobs, and the chart's backup CronJob). */
export function databaseClients(manifests: readonly Manifest[]): DatabaseClient[] {
  return podTemplates(manifests).flatMap(({ owner, spec }) => containersOf(spec).flatMap((c) => {
    const env = Object.fromEntries((c.env ?? []).filter((e: any) => typeof e.value === 'string').map((e: any) => [e.name, e.value]));
    return env.PGHOST === undefined ? [] : [{ owner, container: c.name, host: env.PGHOST, port: env.PGPORT ?? '5432' }];
  }));
}

/**
 * The Service a cluster DNS name resolves to: `<name>`, `<name>.<ns>`, `<name>.<ns>.svc` or
 * `<name>.<ns>.svc.cluster.local`, seen from namespace `from`; undefined for anything else.
 */
export function serviceOf(host: string, from: string): { name: string; namespace: string } | undefined {
  const m = /^([a-z0-9-]+)(?:\.([a-z0-9-]+)(?:\.svc(?:\.cluster\.local)?)?)?$/.exec(host);
  return m ? { name: m[1], namespace: m[2] ?? from } : undefined;
}

/** The object `kind/name` of `manifests`, or undefined. */
export const find = (manifests: readonly Manifest[], kind: string, name: string) =>
  manifests.find((m) => m.kind === kind && m.metadata.name === name);

/** Every image of `manifests`' pod templates. */
export function images(manifests: readonly Manifest[]): { owner: string; container: string; image: string }[] {
  return podTemplates(manifests).flatMap(({ owner, spec }) => containersOf(spec).map((c) => ({ owner, container: c.name, image: String(c.image) })));
}

/**
 * The claims the pods of `manifests` use: volumes' claimName, and for StatefulSets the claims
 * their volumeClaimTemplates make for each replica (`<template>-<statefulset>-<ordinal>`).
 */
export function claimsUsed(manifests: readonly Manifest[]): { owner: string; claim: string }[] {
  const fromVolumes = podTemplates(manifests).flatMap(({ owner, spec }) =>
    (spec.volumes ?? []).filter((v: any) => v.persistentVolumeClaim).map((v: any) => ({ owner, claim: String(v.persistentVolumeClaim.claimName) })));
  const fromTemplates = manifests.filter((m) => m.kind === 'StatefulSet').flatMap((s) =>
    Array.from({ length: s.spec.replicas ?? 1 }, (_, i) => i).flatMap((ordinal) =>
      (s.spec.volumeClaimTemplates ?? []).map((t: any) => ({ owner: refOf(s), claim: `${t.metadata.name}-${s.metadata.name}-${ordinal}` }))));
  return [...fromVolumes, ...fromTemplates];
}

/** The value of env var `name` of `container` in a pod template, or undefined. */
export function envOf(template: PodTemplate, container: string, name: string): string | undefined {
  const c = containersOf(template.spec).find((x) => x.name === container);
  return c?.env?.find((e: any) => e.name === name)?.value;
}
