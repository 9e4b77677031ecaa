// dist/ as a user applies it, against a real kube-apiserver: schemas, defaulting, immutable fields,
// Pod Security admission and RBAC decide, not our own reading of the YAML. Three servers start in
// parallel, one per flow, because both profiles (and both apply modes) use the namespace `postgres`
// and a namespace never finishes deleting without controllers:
//   - development and production: `kubectl apply --server-side`, re-applied, upgraded, RBAC;
//   - client-side: `kubectl apply -f dist/development/`, then `--prune` with one more migration.
// Client-side `--prune` only deletes objects carrying kubectl's last-applied annotation, which
// server-side apply never writes: the prune flow is client-side from its first apply (see the
// last server-side test).
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST, Manifest, manifests } from '../support/dist';
import { describeKube, Kube, startKube } from '../support/kube';
import {
  NAMESPACE, PROFILES, PRUNE_SELECTOR, ProjectVariant, live, manifestFile, mountedConfigMaps, namespaceObjects, podSpec,
  ref, serverSideApply, synthesizeVariant, versionsOf,
} from '../support/kube-dist';

type Profile = (typeof PROFILES)[number];

const MIGRATION_007 = {
  'migrations/007_add_users_display_name.up.sql': 'ALTER TABLE users ADD COLUMN display_name VARCHAR(255);\n',
  'migrations/007_add_users_display_name.down.sql': 'ALTER TABLE users DROP COLUMN display_name;\n',
};

/**
 * What each rendered ServiceAccount's Job does with the API, as `verb resource[/name]` (core
 * group). Anything rendered but not listed here fails the tests: a new account needs its rules here.
 */
const NEEDS: Record<Profile, Record<string, string[]>> = {
  development: {
    // generate mode: read and create the Secret, label it, look for the database's volume.
    'postgres-postgresql-credentials': [
      'get secrets/postgres-postgresql-credentials',
      'create secrets',
      'patch secrets/postgres-postgresql-credentials',
      'get persistentvolumeclaims/data-postgres-postgresql-0',
    ],
  },
  production: {
    // verify mode: the Secret is user-managed; only check it.
    'postgres-postgresql-credentials': ['get secrets/postgres-credentials'],
  },
};

/** Requests no rendered account may make, per profile. */
const REFUSED: Record<Profile, string[][]> = {
  development: [
    ['get', 'secrets/postgres-credentials'],
    ['get', 'secrets/some-other-secret'],
    ['list', 'secrets'],
    ['watch', 'secrets'],
    ['delete', 'secrets/postgres-postgresql-credentials'],
    ['update', 'secrets/postgres-postgresql-credentials'],
    ['get', 'persistentvolumeclaims/data-postgres-postgresql-1'],
    ['list', 'persistentvolumeclaims'],
    ['create', 'pods'],
    ['create', 'jobs.batch'],
    ['get', 'configmaps'],
    ['get', 'secrets/postgres-postgresql-credentials', '-n', 'default'],
    ['create', 'secrets', '-n', 'default'],
    ['create', 'secrets', '-n', 'kube-system'],
  ],
  production: [
    ['create', 'secrets'],
    ['patch', 'secrets/postgres-credentials'],
    ['update', 'secrets/postgres-credentials'],
    ['delete', 'secrets/postgres-credentials'],
    ['get', 'secrets/postgres-postgresql-credentials'],
    ['list', 'secrets'],
    ['get', 'persistentvolumeclaims/data-postgres-postgresql-0'],
    ['create', 'pods'],
    ['get', 'secrets/postgres-credentials', '-n', 'default'],
  ],
};

const sa = (name: string) => `system:serviceaccount:${NAMESPACE}:${name}`;

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

/** `kubectl auth can-i <args> --as=<user>` → true/false; anything but yes/no throws. */
async function canI(kube: Kube, user: string, args: string[]): Promise<boolean> {
  const r = await kube.kubectl(['auth', 'can-i', ...args, ...(args.includes('-n') ? [] : ['-n', NAMESPACE]), `--as=${user}`]);
  if (!['yes', 'no'].includes(r.stdout.trim())) throw new Error(`kubectl auth can-i ${args.join(' ')}: ${r.stderr}`);
  return r.code === 0;
}

const workloads = (ms: Manifest[]) => ms.filter((m) => m.kind === 'Job' || m.kind === 'CronJob');
const migrationObjects = (ms: Manifest[]) => ms.filter((m) => m.metadata.labels?.['app.kubernetes.io/component'] === 'migrations');
/** The migration Job and its ConfigMap(s): what one more migration must replace. */
const migrationRefs = (ms: Manifest[]) => migrationObjects(ms).filter((m) => m.kind === 'Job' || m.kind === 'ConfigMap').map(ref);
const namespaced = (ms: Manifest[]) => (k: string) => ms.some((m) => ref(m) === k && m.metadata.namespace === NAMESPACE);

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
  const servers: Partial<Record<Profile | 'clientSide', Kube>> = {};
  let v2: ProjectVariant | undefined;

  beforeAll(async () => {
    const started = Date.now();
    const results = await Promise.allSettled([
      ...(['development', 'production', 'clientSide'] as const).map((k) => startKube().then((kube) => (servers[k] = kube))),
      synthesizeVariant({ files: MIGRATION_007 }).then((v) => (v2 = v)),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    console.log(`3 kube-apiservers and the 007 variant ready in ${Date.now() - started} ms`);
  });
  afterAll(async () => {
    await Promise.all(Object.values(servers).map((k) => k.stop()));
    v2?.remove();
  });

  describe.each(PROFILES)('%s, server-side apply', (profile) => {
    const kube = () => servers[profile]!;
    const file = manifestFile(profile);
    const rendered = manifests(profile);

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
      expect(accounts.map((m) => m.metadata.name).sort()).toEqual(Object.keys(NEEDS[profile]).sort());
      for (const account of accounts) expect(account.automountServiceAccountToken, ref(account)).toBe(false);
      const withToken: string[] = [];
      for (const m of workloads(rendered)) {
        const spec = podSpec((await live(kube(), ref(m)))!);
        if (spec.serviceAccountName !== undefined) {
          expect(Object.keys(NEEDS[profile]), ref(m)).toContain(spec.serviceAccountName);
          expect(spec.automountServiceAccountToken, ref(m)).toBe(true);
          withToken.push(ref(m));
        } else {
          expect(spec.automountServiceAccountToken, ref(m)).toBe(false);
        }
      }
      expect(withToken).toEqual(rendered.filter((m) => m.kind === 'Job' && m.metadata.labels?.['app.kubernetes.io/component'] === 'credentials').map(ref));
    });

    it('gives every ServiceAccount exactly what its Job needs (kubectl auth can-i --as)', async () => {
      for (const [name, needs] of Object.entries(NEEDS[profile])) {
        for (const need of needs) {
          expect(await canI(kube(), sa(name), need.split(' ')), `${name} can ${need}`).toBe(true);
        }
        const refused = await Promise.all(REFUSED[profile].map(async (args) => [args.join(' '), await canI(kube(), sa(name), args)] as const));
        expect(refused.filter(([, allowed]) => allowed).map(([what]) => what), `${name} may not`).toEqual([]);
      }
    });

    it('grants nothing beyond that: `can-i --list` is a fresh account\'s plus those rules, and nothing elsewhere', async () => {
      const nobody = sa('no-bindings-at-all');
      for (const [name, needs] of Object.entries(NEEDS[profile])) {
        const baseline = await rulesOf(kube(), nobody, NAMESPACE);
        const rules = await rulesOf(kube(), sa(name), NAMESPACE);
        expect([...rules].filter((g) => !baseline.has(g)).sort()).toEqual([...needs].sort());
        expect([...baseline].filter((g) => !rules.has(g))).toEqual([]);
        for (const ns of ['default', 'kube-system']) expect(await rulesOf(kube(), sa(name), ns)).toEqual(await rulesOf(kube(), nobody, ns));
      }
    });
  });

  describe('development with one more migration, server-side applied over the first', () => {
    const kube = () => servers.development!;
    const v1 = manifests('development');

    it('renames every Job and ConfigMap whose content changes: nothing immutable is edited in place', () => {
      const u = upgrade(v1, v2!.manifests('development'));
      expect(u.changed.filter((r) => /^(Job|ConfigMap)\//.test(r))).toEqual([]);
      expect(u.added).toEqual(expect.arrayContaining(migrationRefs(v2!.manifests('development'))));
      expect(u.removed).toEqual(expect.arrayContaining(migrationRefs(v1)));
    });

    it('applies with exit 0 and no warnings: the new objects beside the old, unchanged ones untouched', async () => {
      const u = upgrade(v1, v2!.manifests('development'));
      const before = await namespaceObjects(kube());
      const r = await serverSideApply(kube(), manifestFile('development', v2!.dist));
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      const after = await namespaceObjects(kube());
      expect(Object.keys(after).filter((k) => !(k in before)).sort()).toEqual(u.added.filter(namespaced(v2!.manifests('development'))));
      // Server-side apply deletes nothing: the first release's content-named objects stay, as they were.
      for (const k of [...u.same, ...u.removed].filter((k) => k in before)) expect(after[k], k).toBe(before[k]);
    });

    it('points the status and rollback CronJobs at the new ConfigMap', async () => {
      const next = v2!.manifests('development');
      const configMaps = migrationObjects(next).filter((m) => m.kind === 'ConfigMap').map((m) => m.metadata.name);
      const cronJobs = migrationObjects(next).filter((m) => m.kind === 'CronJob');
      expect(cronJobs.map((m) => m.metadata.name).sort()).toEqual(['postgres-postgresql-migrations-rollback', 'postgres-postgresql-migrations-status']);
      for (const m of cronJobs) expect(mountedConfigMaps((await live(kube(), ref(m)))!), ref(m)).toEqual(configMaps);
    });

    it('client-side `--prune` never deletes what server-side apply created: use one apply mode throughout', async () => {
      const u = upgrade(v1, v2!.manifests('development'));
      const r = await kube().kubectl(['apply', '--prune', '-l', PRUNE_SELECTOR, '-f', manifestFile('development', v2!.dist)]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).not.toMatch(/ pruned$/m);
      const after = await namespaceObjects(kube());
      for (const k of u.removed.filter(namespaced(v1))) expect(after, k).toHaveProperty([k]);
    });
  });

  describe('development, client-side: `kubectl apply -f dist/development/`, then `--prune` an upgrade', () => {
    const kube = () => servers.clientSide!;
    const v1 = manifests('development');
    const secret = 'Secret/postgres-postgresql-credentials';

    it('applies the folder with exit 0 and no warnings, helm/ not included', async () => {
      const r = await kube().kubectl(['apply', '-f', `${DIST}/development/`]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim().split('\n')).toEqual(v1.map((m) => expect.stringMatching(new RegExp(`/${m.metadata.name} created$`))));
    });

    it('passes a server dry run of the folder once applied, without a warning', async () => {
      const r = await kube().kubectl(['apply', '-f', `${DIST}/development/`, '--dry-run=server']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      for (const line of r.stdout.trim().split('\n')) expect(line).toMatch(/ \(server dry run\)$/);
    });

    it('`--prune -l part-of,instance` removes the old migration Job and ConfigMap and nothing else, not the bootstrap\'s Secret', async () => {
      // What the credentials bootstrap leaves behind: labelled managed-by only, no part-of.
      await kube().kubectlOk(['create', 'secret', 'generic', 'postgres-postgresql-credentials', '-n', NAMESPACE, '--from-literal=password=0123456789abcdef']);
      await kube().kubectlOk(['label', 'secret', 'postgres-postgresql-credentials', '-n', NAMESPACE, 'app.kubernetes.io/managed-by=learnflow-credentials-bootstrap']);
      const before = await namespaceObjects(kube());
      expect(before).toHaveProperty([secret]);
      const next = v2!.manifests('development');
      const u = upgrade(v1, next);

      const r = await kube().kubectl(['apply', '--prune', '-l', PRUNE_SELECTOR, '-f', manifestFile('development', v2!.dist)]);
      expect(r.code, r.stderr).toBe(0);
      // kubectl 1.31 nags about its default prune set; `--prune-allowlist` silences it.
      expect(otherLines(r.stderr, pruneDeprecation)).toEqual([]);

      const pruned = r.stdout.split('\n').filter((l) => l.endsWith(' pruned')).map((l) => l.replace(/^\S+\/(\S+) pruned$/, '$1')).sort();
      expect(pruned).toEqual(u.removed.map((k) => k.split('/')[1]).sort());
      expect(u.removed).toEqual(expect.arrayContaining(migrationRefs(v1)));
      const after = await namespaceObjects(kube());
      expect(Object.keys(after).sort()).toEqual([...next.filter((m) => m.metadata.namespace === NAMESPACE).map(ref), secret].sort());
      // Kept means untouched: only the objects whose content changed were written.
      for (const k of [...u.same, secret]) if (k in before) expect(after[k], k).toBe(before[k]);
      expect((await live(kube(), `namespace/${NAMESPACE}`, ''))?.status.phase).toBe('Active');
    });
  });
});
