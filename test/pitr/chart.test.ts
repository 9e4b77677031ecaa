// The real chart (helm template of the vendored archives with dist/production's values) renders
// the archive settings, volumes, mounts and sidecar that the recovery tests assume: the
// archive_command and pg_hba they ran,
// the data directory restore.sh rebuilds, the backup volume and the scripts where the scripts
// look for them, and an upload sidecar that passes Pod Security "restricted".
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { readVendored, vendoredChart } from '../../lib/vendored';
import { BACKUP_MOUNT, DATA_VOLUME_MOUNT, OBJECT_STORE_SECRET_MOUNT, PGDATA, SCRIPTS_MOUNT } from '../../lib/pitr/contracts';
import { PG_HBA_WITH_REPLICATION, archiveConfiguration } from '../../lib/pitr/settings';
import { ROOT } from '../support/dist';
import { Kube, useSharedKube } from '../support/kube';
import { describeWithTools, helmEnv, runToolOk } from '../support/tools';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'learnflow-pitr-chart-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describeWithTools('the chart renders the archive and the backup volume', ['helm'], () => {
  for (const version of ['15.5.38', '16.7.27']) {
    it(`chart ${version}: archive settings, pg_hba, volumes, mounts and the upload sidecar`, async () => {
      const chart = vendoredChart(readVendored(ROOT), 'postgresql', version)!;
      // dist/production's values, as users pass them to helm (and Argo CD to the chart).
      const values = path.join(ROOT, 'dist', 'production', 'helm', 'postgresql-values.yaml');
      const rendered = parse(readFileSync(values, 'utf8'));
      const out = await runToolOk('helm', ['template', 'postgres', path.join(ROOT, chart.archive), '--namespace', 'postgres', '-f', values], { env: helmEnv(path.join(scratch, 'helm')) });
      const objects = parseAllDocuments(out).map((d) => d.toJS()).filter((o) => o?.kind);
      const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);

      expect(find('ConfigMap', 'postgres-postgresql-extended-configuration').data['override.conf']).toBe(rendered.primary.extendedConfiguration.trimEnd());
      expect(rendered.primary.extendedConfiguration).toBe(archiveConfiguration(60));
      expect(find('ConfigMap', 'postgres-postgresql-configuration').data['pg_hba.conf']).toBe(PG_HBA_WITH_REPLICATION);

      const pod = find('StatefulSet', 'postgres-postgresql').spec.template.spec;
      const db = pod.containers.find((c: any) => c.name === 'postgresql');
      const mount = (c: any, p: string) => c.volumeMounts.find((m: any) => m.mountPath === p);
      const volume = (name: string) => pod.volumes.find((v: any) => v.name === name);
      // The image reads conf.d/ and pg_hba.conf from its mounted conf directory on every start.
      expect(volume(mount(db, `${DATA_VOLUME_MOUNT}/conf/conf.d/`).name).configMap.name).toBe('postgres-postgresql-extended-configuration');
      expect(volume(mount(db, `${DATA_VOLUME_MOUNT}/conf`).name).configMap.name).toBe('postgres-postgresql-configuration');
      // restore.sh rebuilds PGDATA beside itself on the data volume.
      expect(db.env.find((e: any) => e.name === 'PGDATA').value).toBe(PGDATA);
      expect(mount(db, DATA_VOLUME_MOUNT).name).toBe('data');
      // archive.sh writes to the backup volume and is read from the scripts ConfigMap.
      expect(volume(mount(db, BACKUP_MOUNT).name).persistentVolumeClaim.claimName).toBe('postgres-postgresql-backups');
      expect(volume(mount(db, SCRIPTS_MOUNT).name).configMap.name).toBe('postgres-postgresql-pitr-scripts');

      const sidecar = pod.containers.find((c: any) => c.name === 'offsite');
      expect(sidecar.command).toEqual(['sh', `${SCRIPTS_MOUNT}/offsite.sh`, 'loop']);
      expect(volume(mount(sidecar, BACKUP_MOUNT).name).persistentVolumeClaim.claimName).toBe('postgres-postgresql-backups');
      expect(volume(mount(sidecar, OBJECT_STORE_SECRET_MOUNT).name).secret).toMatchObject({ secretName: 'postgres-object-store', optional: true });
      expect(sidecar.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.securityContext).toMatchObject({ fsGroup: 1001 });
    });
  }
});

// The database pod with its upload sidecar, as the chart renders it from dist/production's
// values, admitted into a namespace enforcing Pod Security "restricted" without one warning.
describeWithTools('the database pod with the upload sidecar on a real API server', ['helm'], () => {
  let kube: Kube;
  useSharedKube((k) => {
    kube = k;
  });

  it('passes Pod Security "restricted" (server dry run, no warning)', async () => {
    const chart = vendoredChart(readVendored(ROOT), 'postgresql', '15.5.38')!;
    const values = path.join(ROOT, 'dist', 'production', 'helm', 'postgresql-values.yaml');
    const ns = 'lftest-pitr-chart';
    const out = await runToolOk('helm', ['template', 'postgres', path.join(ROOT, chart.archive), '--namespace', ns, '-f', values], { env: helmEnv(path.join(scratch, 'helm-pss')) });
    const statefulSet = parseAllDocuments(out).map((d) => d.toJS()).find((o) => o?.kind === 'StatefulSet');
    expect(statefulSet.spec.template.spec.containers.map((c: any) => c.name)).toEqual(['postgresql', 'offsite']);
    await kube.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { 'pod-security.kubernetes.io/enforce': 'restricted', 'pod-security.kubernetes.io/warn': 'restricted' } } }) });
    const r = await kube.kubectl(['apply', '--server-side', '--dry-run=server', '-f', '-'], { input: JSON.stringify(statefulSet) });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
  });
}, { kube: true });
