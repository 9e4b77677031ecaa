// dist/ as a user applies it, against a real kube-apiserver: schemas, defaulting, immutable fields,
// Pod Security admission and RBAC decide, not our own reading of the YAML. Every profile of
// lib/profiles.ts, with expectations derived from its props. The servers start in parallel, one
// per flow, because profiles (and both apply modes) may share a namespace and a namespace never
// finishes deleting without controllers:
//   - each profile: `kubectl apply --server-side`, re-applied, RBAC; the first one also upgraded;
//   - client-side: `kubectl apply -f dist/<first profile>/`, then `--prune` with one more migration.
// Client-side `--prune` only deletes objects carrying kubectl's last-applied annotation, which
// server-side apply never writes: the prune flow is client-side from its first apply (see the
// last server-side test).
import { isDeepStrictEqual } from 'node:util';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chartObjects } from '../../lib/chart';
import { DeploymentConfig, resolveConfig } from '../../lib/config';
import { loadMigrations } from '../../lib/migrations/files';
import { PROFILES, PROFILE_NAMES, ProfileName } from '../../lib/profiles';
import { DIST, Manifest, ROOT, manifests } from '../support/dist';
import { describeKube, Kube, startKube } from '../support/kube';
import {
  ProjectVariant, installCertManagerCrds, live, manifestFile, mountedConfigMaps, namespaceObjects, podSpec, ref, serverSideApply, synthesizeVariant, versionsOf,
} from '../support/kube-dist';

const configOf = (profile: ProfileName): DeploymentConfig => resolveConfig(PROFILES[profile]);
/** The profile whose upgrade and client-side apply are tried: the first one. */
const FIRST = PROFILE_NAMES[0];

/** One migration after the newest of migrations/ (whatever it is), that the static checks accept. */
const NEXT_MIGRATION = (() => {
  const versions = loadMigrations(path.join(ROOT, 'migrations'), { root: ROOT }).map((m) => m.version);
  const newest = versions.at(-1) ?? '000';
  const next = String(BigInt(newest) + 1n).padStart(newest.length, '0');
  return {
    [`migrations/${next}_create_kube_test_marker.up.sql`]: 'CREATE TABLE kube_test_marker (id integer PRIMARY KEY);\n',
    [`migrations/${next}_create_kube_test_marker.down.sql`]: 'DROP TABLE kube_test_marker;\n',
  };
})();

/**
 * What the profile's one ServiceAccount, the credentials bootstrap's, does with the API, as
 * `verb resource[/name]` (core group), and requests it may not make: derived from the props the
 * way the bootstrap works (generate or verify mode). A new account fails the tests until it has
 * its rules here.
 */
function accountRules(config: DeploymentConfig) {
  const replicas = config.readReplicas?.count ?? 0;
  const { service, dataClaim, statefulSet } = chartObjects(config.releaseName, replicas);
  const otherDataClaim = chartObjects(config.releaseName, replicas > 0 ? 0 : 1).dataClaim;
  // Both modes: the major-version guard reads the data claim and the chart's StatefulSet; the
  // volume guard the primary's claim under the other architecture.
  const guard = [`get persistentvolumeclaims/${dataClaim}`, `get persistentvolumeclaims/${otherDataClaim}`, `get statefulsets.apps/${statefulSet}`];
  const guardRefused = [['get', 'statefulsets.apps/other'], ['list', 'statefulsets.apps'], ['patch', `statefulsets.apps/${statefulSet}`]];
  const account = `${service}-credentials`;
  const existing = config.credentials.existingSecret;
  const elsewhere = (...args: string[]) => [...args, '-n', 'default'];
  if (existing === undefined) {
    const secret = account;
    return {
      account,
      // Generate mode: read and create the Secret, label it, look for the database's volume.
      needs: [`get secrets/${secret}`, 'create secrets', `patch secrets/${secret}`, ...guard],
      refused: [...guardRefused,
        ['get', 'secrets/some-other-secret'], ['list', 'secrets'], ['watch', 'secrets'],
        ['delete', `secrets/${secret}`], ['update', `secrets/${secret}`],
        ['get', `persistentvolumeclaims/${dataClaim.replace(/-0$/, '-1')}`], ['list', 'persistentvolumeclaims'],
        ['create', 'pods'], ['create', 'jobs.batch'], ['get', 'configmaps'],
        elsewhere('get', `secrets/${secret}`), elsewhere('create', 'secrets'), ['create', 'secrets', '-n', 'kube-system'],
      ],
    };
  }
  return {
    account,
    // Verify mode: the Secret is user-managed; only check it.
    needs: [`get secrets/${existing}`, ...guard],
    refused: [...guardRefused,
      ['create', 'secrets'], ['patch', `secrets/${existing}`], ['update', `secrets/${existing}`], ['delete', `secrets/${existing}`],
      ['get', `secrets/${account}`], ['list', 'secrets'], ['get', `persistentvolumeclaims/${dataClaim.replace(/-0$/, '-1')}`],
      ['create', 'pods'], elsewhere('get', `secrets/${existing}`),
    ],
  };
}

const sa = (ns: string, name: string) => `system:serviceaccount:${ns}:${name}`;

/** Every grant of a SelfSubjectRulesReview as `verb resource[.group][/name]` (or `verb /url`). */
function grants(review: any): Set<string> {
  const out = new Set<string>();
  for (const r of review.status.resourceRules ?? []) {
    for (const verb of r.verbs) for (const group of r.apiGroups ?? ['']) for (const resource of r.resources ?? []) {
      for (const name of r.resourceNames?.length ? r.resourceNames : ['']) {
        out.add(`${verb} ${resource}${group ? `.${group}` : ''}${name ? `/${name}` : ''}`);
      }
    }
  }
  for (const r of review.status.nonResourceRules ?? []) for (const verb of r.verbs) for (const url of r.nonResourceURLs) out.add(`${verb} ${url}`);
  return out;
}

/** What `user` may do in `ns`, as the API server's rule resolver says (`kubectl auth can-i --list`). */
async function rulesOf(kube: Kube, user: string, ns: string): Promise<Set<string>> {
  const review = { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectRulesReview', spec: { namespace: ns } };
  const out = await kube.kubectlOk(['create', '--validate=false', '-f', '-', '-o', 'json', `--as=${user}`], { input: JSON.stringify(review) });
  return grants(JSON.parse(out));
}

/** `kubectl auth can-i <args> --as=<user>` in `ns` (unless args name one) → true/false; anything but yes/no throws. */
async function canI(kube: Kube, user: string, ns: string, args: string[]): Promise<boolean> {
  const r = await kube.kubectl(['auth', 'can-i', ...args, ...(args.includes('-n') ? [] : ['-n', ns]), `--as=${user}`]);
  if (!['yes', 'no'].includes(r.stdout.trim())) throw new Error(`kubectl auth can-i ${args.join(' ')}: ${r.stderr}`);
  return r.code === 0;
}

const workloads = (ms: Manifest[]) => ms.filter((m) => m.kind === 'Job' || m.kind === 'CronJob');
const migrationObjects = (ms: Manifest[]) => ms.filter((m) => m.metadata.labels?.['app.kubernetes.io/component'] === 'migrations');
/** The migration Job and its ConfigMap(s): what one more migration must replace. */
const migrationRefs = (ms: Manifest[]) => migrationObjects(ms).filter((m) => m.kind === 'Job' || m.kind === 'ConfigMap').map(ref);
const namespaced = (ms: Manifest[], ns: string) => (k: string) => ms.some((m) => ref(m) === k && m.metadata.namespace === ns);

/** What going from `from` to `to` does, by `Kind/name`: new, gone, rewritten and identical objects. */
function upgrade(from: Manifest[], to: Manifest[]) {
  const old = new Map(from.map((m) => [ref(m), m]));
  const next = new Map(to.map((m) => [ref(m), m]));
  const kept = [...next.keys()].filter((k) => old.has(k));
  return {
    added: [...next.keys()].filter((k) => !old.has(k)).sort(),
    removed: [...old.keys()].filter((k) => !next.has(k)).sort(),
    changed: kept.filter((k) => !isDeepStrictEqual(old.get(k), next.get(k))).sort(),
    same: kept.filter((k) => isDeepStrictEqual(old.get(k), next.get(k))).sort(),
  };
}

/** stderr without the one warning every apply over server-side-applied objects prints per object. */
const lastAppliedWarnings = /^Warning: resource \S+ is missing the kubectl\.kubernetes\.io\/last-applied-configuration annotation/;
/** `W… prune.go… Deprecated: kubectl apply will no longer prune non-namespaced resources by default…` */
const pruneDeprecation = /^W\d{4} .*prune\.go:\d+\] Deprecated: kubectl apply will no longer prune non-namespaced resources/;
const otherLines = (stderr: string, ...expected: RegExp[]) => stderr.split('\n').filter((l) => l !== '' && !expected.some((e) => e.test(l)));

describeKube('dist/ on a real API server', () => {
  const servers = new Map<ProfileName | 'client-side', Kube>();
  let v2: ProjectVariant | undefined;

  beforeAll(async () => {
    const started = Date.now();
    const results = await Promise.allSettled([
      // Clusters with cert-manager: a profile with tls.issuer renders a Certificate.
      ...[...PROFILE_NAMES, 'client-side' as const].map((k) => startKube().then(async (kube) => {
        servers.set(k, kube);
        await installCertManagerCrds(kube);
      })),
      synthesizeVariant({ files: NEXT_MIGRATION }).then((v) => (v2 = v)),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    console.log(`${servers.size} kube-apiservers and the variant with one more migration ready in ${Date.now() - started} ms`);
  });
  afterAll(async () => {
    await Promise.all([...servers.values()].map((k) => k.stop()));
    v2?.remove();
  });

  describe.each(PROFILE_NAMES)('%s, server-side apply', (profile) => {
    const kube = () => servers.get(profile)!;
    const file = manifestFile(profile);
    const rendered = manifests(profile);
    const { namespace: NAMESPACE } = configOf(profile);
    const { account, needs, refused } = accountRules(configOf(profile));

    it('applies with exit 0 and not one warning, Pod Security "restricted" coming from its own Namespace', async () => {
      const r = await serverSideApply(kube(), file);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n')).toHaveLength(rendered.length);
      const ns = await live(kube(), `namespace/${NAMESPACE}`, '');
      expect(ns?.metadata.labels).toMatchObject({
        'pod-security.kubernetes.io/enforce': 'restricted',
        'pod-security.kubernetes.io/warn': 'restricted',
      });
      expect(Object.keys(await versionsOf(kube(), file)).sort()).toEqual(rendered.map(ref).sort());
    });

    it('"no warnings" means something: the namespace warns about a Job that breaks "restricted"', async () => {
      const [job] = workloads(rendered).filter((m) => m.kind === 'Job');
      const broken = structuredClone(job);
      broken.metadata.name = 'not-restricted';
      delete podSpec(broken).securityContext;
      for (const c of podSpec(broken).containers) delete c.securityContext;
      const r = await kube().kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], { input: JSON.stringify(broken) });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/Warning: would violate PodSecurity "restricted:latest"/);
    });

    it('re-applies as a no-op: every resourceVersion unchanged, `kubectl diff --server-side` exits 0', async () => {
      // A claim is written once more on the first re-apply after its creation (the API server's
      // claim strategy; managedFields, spec and status unchanged), never again after: settle it.
      if (rendered.some((m) => m.kind === 'PersistentVolumeClaim')) await serverSideApply(kube(), file);
      const before = await versionsOf(kube(), file);
      const r = await serverSideApply(kube(), file);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect(await versionsOf(kube(), file)).toEqual(before);
      const diff = await kube().kubectl(['diff', '--server-side', '--field-manager=learnflow', '-f', file]);
      expect([diff.code, diff.stdout, diff.stderr]).toEqual([0, '', '']);
    });

    it(`\`kubectl apply -f dist/${profile}/\` takes the manifest and leaves helm/ alone (server dry run)`, async () => {
      const r = await kube().kubectl(['apply', '-f', `${DIST}/${profile}/`, '--dry-run=server']);
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(rendered.length);
      for (const line of lines) expect(line).toMatch(/ \(server dry run\)$/);
      // The objects were made by server-side apply, so client-side apply notes it adds its annotation.
      expect(otherLines(r.stderr, lastAppliedWarnings)).toEqual([]);
    });

    it('mounts a token only where a Job talks to the API: the credentials Job, with its own account', async () => {
      const accounts = rendered.filter((m) => m.kind === 'ServiceAccount');
      expect(accounts.map((m) => m.metadata.name)).toEqual([account]);
      for (const a of accounts) expect(a.automountServiceAccountToken, ref(a)).toBe(false);
      const withToken: string[] = [];
      for (const m of workloads(rendered)) {
        const spec = podSpec((await live(kube(), ref(m), NAMESPACE))!);
        if (spec.serviceAccountName !== undefined) {
          expect(spec.serviceAccountName, ref(m)).toBe(account);
          expect(spec.automountServiceAccountToken, ref(m)).toBe(true);
          withToken.push(ref(m));
        } else {
          expect(spec.automountServiceAccountToken, ref(m)).toBe(false);
        }
      }
      expect(withToken).toEqual(rendered.filter((m) => m.kind === 'Job' && m.metadata.labels?.['app.kubernetes.io/component'] === 'credentials').map(ref));
    });

    it('gives the ServiceAccount exactly what its Job needs (kubectl auth can-i --as)', async () => {
      const user = sa(NAMESPACE, account);
      for (const need of needs) expect(await canI(kube(), user, NAMESPACE, need.split(' ')), `${account} can ${need}`).toBe(true);
      const allowed = await Promise.all(refused.map(async (args) => [args.join(' '), await canI(kube(), user, NAMESPACE, args)] as const));
      expect(allowed.filter(([, yes]) => yes).map(([what]) => what), `${account} may not`).toEqual([]);
    });

    it('grants nothing beyond that: `can-i --list` is a fresh account\'s plus those rules, and nothing elsewhere', async () => {
      const [nobody, user] = [sa(NAMESPACE, 'no-bindings-at-all'), sa(NAMESPACE, account)];
      const baseline = await rulesOf(kube(), nobody, NAMESPACE);
      const rules = await rulesOf(kube(), user, NAMESPACE);
      expect([...rules].filter((g) => !baseline.has(g)).sort()).toEqual([...needs].sort());
      expect([...baseline].filter((g) => !rules.has(g))).toEqual([]);
      for (const ns of ['default', 'kube-system']) expect(await rulesOf(kube(), user, ns)).toEqual(await rulesOf(kube(), nobody, ns));
    });
  });

  describe(`${FIRST} with one more migration, server-side applied over the first`, () => {
    const kube = () => servers.get(FIRST)!;
    const v1 = manifests(FIRST);
    const { namespace: NAMESPACE, releaseName } = configOf(FIRST);
    const fullname = chartObjects(releaseName).service;
    /** The selector the README gives `kubectl apply --prune -l`, for this release. */
    const PRUNE_SELECTOR = `app.kubernetes.io/part-of=learnflow-postgres,app.kubernetes.io/instance=${releaseName}`;

    it('renames every Job and ConfigMap whose content changes: nothing immutable is edited in place', () => {
      const u = upgrade(v1, v2!.manifests(FIRST));
      expect(u.changed.filter((r) => /^(Job|ConfigMap)\//.test(r))).toEqual([]);
      expect(u.added).toEqual(expect.arrayContaining(migrationRefs(v2!.manifests(FIRST))));
      expect(u.removed).toEqual(expect.arrayContaining(migrationRefs(v1)));
    });

    it('applies with exit 0 and no warnings: the new objects beside the old, unchanged ones untouched', async () => {
      const u = upgrade(v1, v2!.manifests(FIRST));
      const before = await namespaceObjects(kube(), NAMESPACE);
      const r = await serverSideApply(kube(), manifestFile(FIRST, v2!.dist));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      const after = await namespaceObjects(kube(), NAMESPACE);
      expect(Object.keys(after).filter((k) => !(k in before)).sort()).toEqual(u.added.filter(namespaced(v2!.manifests(FIRST), NAMESPACE)));
      // Server-side apply deletes nothing: the first release's content-named objects stay, as they were.
      for (const k of [...u.same, ...u.removed].filter((k) => k in before)) expect(after[k], k).toBe(before[k]);
    });

    it('points the status and rollback CronJobs at the new ConfigMap', async () => {
      const next = v2!.manifests(FIRST);
      const configMaps = migrationObjects(next).filter((m) => m.kind === 'ConfigMap').map((m) => m.metadata.name);
      const cronJobs = migrationObjects(next).filter((m) => m.kind === 'CronJob');
      expect(cronJobs.map((m) => m.metadata.name).sort()).toEqual([`${fullname}-migrations-rollback`, `${fullname}-migrations-status`]);
      for (const m of cronJobs) expect(mountedConfigMaps((await live(kube(), ref(m), NAMESPACE))!), ref(m)).toEqual(configMaps);
    });

    it('client-side `--prune` never deletes what server-side apply created: use one apply mode throughout', async () => {
      const u = upgrade(v1, v2!.manifests(FIRST));
      const r = await kube().kubectl(['apply', '--prune', '-l', PRUNE_SELECTOR, '-f', manifestFile(FIRST, v2!.dist)]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).not.toMatch(/ pruned$/m);
      const after = await namespaceObjects(kube(), NAMESPACE);
      for (const k of u.removed.filter(namespaced(v1, NAMESPACE))) expect(after, k).toHaveProperty([k]);
    });
  });

  describe(`${FIRST}, client-side: \`kubectl apply -f dist/${FIRST}/\`, then \`--prune\` an upgrade`, () => {
    const kube = () => servers.get('client-side')!;
    const v1 = manifests(FIRST);
    const { namespace: NAMESPACE, releaseName } = configOf(FIRST);
    const PRUNE_SELECTOR = `app.kubernetes.io/part-of=learnflow-postgres,app.kubernetes.io/instance=${releaseName}`;
    // What the credentials bootstrap leaves behind (user-managed, or generated under this name).
    const secretName = configOf(FIRST).credentials.existingSecret ?? `${chartObjects(releaseName).service}-credentials`;
    const secret = `Secret/${secretName}`;

    it('applies the folder with exit 0 and no warnings, helm/ not included', async () => {
      const r = await kube().kubectl(['apply', '-f', `${DIST}/${FIRST}/`]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n')).toEqual(v1.map((m) => expect.stringMatching(new RegExp(`/${m.metadata.name} created$`))));
    });

    it('passes a server dry run of the folder once applied, without a warning', async () => {
      const r = await kube().kubectl(['apply', '-f', `${DIST}/${FIRST}/`, '--dry-run=server']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      for (const line of r.stdout.trim().split('\n')) expect(line).toMatch(/ \(server dry run\)$/);
    });

    it('`--prune -l part-of,instance` removes the old migration Job and ConfigMap and nothing else, not the bootstrap\'s Secret', async () => {
      // What the credentials bootstrap leaves behind: labelled managed-by only, no part-of.
      await kube().kubectlOk(['create', 'secret', 'generic', secretName, '-n', NAMESPACE, '--from-literal=password=0123456789abcdef']);
      await kube().kubectlOk(['label', 'secret', secretName, '-n', NAMESPACE, 'app.kubernetes.io/managed-by=learnflow-credentials-bootstrap']);
      const before = await namespaceObjects(kube(), NAMESPACE);
      expect(before).toHaveProperty([secret]);
      const next = v2!.manifests(FIRST);
      const u = upgrade(v1, next);

      const r = await kube().kubectl(['apply', '--prune', '-l', PRUNE_SELECTOR, '-f', manifestFile(FIRST, v2!.dist)]);
      expect(r.code, r.stderr).toBe(0);
      // kubectl 1.31 nags about its default prune set; `--prune-allowlist` silences it.
      expect(otherLines(r.stderr, pruneDeprecation)).toEqual([]);

      const pruned = r.stdout.split('\n').filter((l) => l.endsWith(' pruned')).map((l) => l.replace(/^\S+\/(\S+) pruned$/, '$1')).sort();
      expect(pruned).toEqual(u.removed.map((k) => k.split('/')[1]).sort());
      expect(u.removed).toEqual(expect.arrayContaining(migrationRefs(v1)));
      const after = await namespaceObjects(kube(), NAMESPACE);
      expect(Object.keys(after).sort()).toEqual([...next.filter((m) => m.metadata.namespace === NAMESPACE).map(ref), secret].sort());
      // Kept means untouched: only the objects whose content changed were written.
      for (const k of [...u.same, secret]) if (k in before) expect(after[k], k).toBe(before[k]);
      expect((await live(kube(), `namespace/${NAMESPACE}`, ''))?.status.phase).toBe('Active');
    });
  });
});
