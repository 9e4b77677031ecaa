// The Kubernetes test tier itself: a real kube-apiserver (+ etcd) starts, enforces Pod Security
// admission and RBAC, and issues ServiceAccount tokens. Other test/kube/ files build on this.
import { beforeAll, expect, it } from 'vitest';
import { describeKube, Kube, useSharedKube } from '../support/kube';

const NS = 'lftest-smoke';

const namespace = `
apiVersion: v1
kind: Namespace
metadata:
  name: ${NS}
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
`;

/** A Job whose pod runs as root with privilege escalation: fine for "baseline", not "restricted". */
const violatingJob = `
apiVersion: batch/v1
kind: Job
metadata: {name: violating, namespace: ${NS}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: main
          image: busybox:1.36
          command: [sh, -c, 'true']
`;

/** Compliant with "restricted", and uses podFailurePolicy (batch/v1, 1.26+ beta / 1.31 GA). */
const compliantJob = `
apiVersion: batch/v1
kind: Job
metadata: {name: compliant, namespace: ${NS}}
spec:
  backoffLimit: 2
  podFailurePolicy:
    rules:
      - action: FailJob
        onExitCodes: {containerName: main, operator: In, values: [42]}
  template:
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 1001
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: main
          image: busybox:1.36
          command: [sh, -c, 'true']
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
`;

const violatingPod = `
apiVersion: v1
kind: Pod
metadata: {name: violating, namespace: ${NS}}
spec:
  containers:
    - name: main
      image: busybox:1.36
      securityContext: {privileged: true}
`;

const migratorRbac = `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: job-runner, namespace: ${NS}}
rules:
  - apiGroups: [batch]
    resources: [jobs]
    verbs: [get, list, watch, create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: migrator-job-runner, namespace: ${NS}}
subjects:
  - {kind: ServiceAccount, name: migrator, namespace: ${NS}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: job-runner}
`;

const apply = ['apply', '--server-side', '--field-manager=learnflow-test', '-f', '-'];

describeKube('kube test tier (kube-apiserver + etcd)', () => {
  let kube: Kube;

  useSharedKube((k) => (kube = k));
  beforeAll(async () => {
    console.log(`kube-apiserver v${kube.version} ready at ${kube.server} in ${kube.startupMs} ms`);
    await kube.kubectlOk(apply, { input: namespace });
  });

  it('serves the pinned version', async () => {
    const out = JSON.parse(await kube.kubectlOk(['version', '-o', 'json']));
    expect(out.serverVersion.gitVersion).toBe(`v${kube.version}`);
    expect(out.clientVersion.gitVersion).toBe(`v${kube.version}`);
  });

  it('warns about a Job whose pods would violate the namespace\'s "restricted" level', async () => {
    const r = await kube.kubectl(apply, { input: violatingJob });
    expect(r.code, r.stderr).toBe(0); // the Job is admitted; its pods would be rejected
    expect(r.stderr).toMatch(/Warning: would violate PodSecurity "restricted:latest"/);
    expect(r.stderr).toMatch(/allowPrivilegeEscalation != false/);
    expect(r.stderr).toMatch(/runAsNonRoot != true/);
  });

  it('rejects such a Pod outright', async () => {
    // The ServiceAccount admission plugin wants the pod's ServiceAccount to exist, and no
    // controller-manager creates `default` here.
    await kube.kubectlOk(['create', 'serviceaccount', 'default', '-n', NS]);
    const r = await kube.kubectl([...apply, '--dry-run=server'], { input: violatingPod });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/forbidden: violates PodSecurity "restricted:latest": privileged/);
  });

  it('admits a compliant Job with podFailurePolicy and no warnings', async () => {
    const r = await kube.kubectl(apply, { input: compliantJob });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const job = JSON.parse(await kube.kubectlOk(['get', 'job', 'compliant', '-n', NS, '-o', 'json']));
    expect(job.spec.podFailurePolicy.rules[0].action).toBe('FailJob');
  });

  it('authenticates a ServiceAccount by token and authorizes it with RBAC', async () => {
    await kube.kubectlOk(['create', 'serviceaccount', 'migrator', '-n', NS]);
    const asMigrator = await kube.asServiceAccount(NS, 'migrator');
    const canI = (...args: string[]) => kube.kubectl(['auth', 'can-i', ...args], { kubeconfig: asMigrator });

    const whoami = await kube.kubectlOk(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], { kubeconfig: asMigrator });
    expect(whoami).toBe(`system:serviceaccount:${NS}:migrator`);

    const before = await canI('create', 'jobs', '-n', NS);
    expect([before.code, before.stdout.trim()]).toEqual([1, 'no']);

    await kube.kubectlOk(apply, { input: migratorRbac });
    // The RBAC authorizer reads from an informer: the binding takes effect within moments.
    let after = await canI('create', 'jobs', '-n', NS);
    for (let i = 0; i < 50 && after.code !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await canI('create', 'jobs', '-n', NS);
    }
    expect([after.code, after.stdout.trim()]).toEqual([0, 'yes']);
    expect((await canI('delete', 'jobs', '-n', NS)).stdout.trim()).toBe('no');
    expect((await canI('create', 'jobs', '-n', 'default')).stdout.trim()).toBe('no');
    expect((await canI('get', 'secrets', '-n', NS)).stdout.trim()).toBe('no');

    // …and the token really is accepted for the granted verb, and refused for others.
    const created = await kube.kubectl(apply, { input: compliantJob.replace('name: compliant', 'name: by-migrator'), kubeconfig: asMigrator });
    expect(created.code, created.stderr).not.toBe(0); // server-side apply is a PATCH: not granted
    expect(created.stderr).toMatch(new RegExp(`forbidden: User "system:serviceaccount:${NS}:migrator" cannot patch resource "jobs"`));
    const viaCreate = await kube.kubectl(['create', '-f', '-'], { input: compliantJob.replace('name: compliant', 'name: by-migrator'), kubeconfig: asMigrator });
    expect(viaCreate.code, viaCreate.stderr).toBe(0);
  });
});
