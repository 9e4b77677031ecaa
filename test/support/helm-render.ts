// A minimal stand-in until the chart branch's test/support/chart-render.ts (chartCase) lands on main:
// what the real chart renders for a deployment: `helm template` of the vendored chart archive
// with the values the synth writes, as Argo CD and `helm upgrade --install` would render it.
// Needs helm (describeWithTools(..., ['helm'], ...)).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { resolveConfig, LearnflowPostgresProps } from '../../lib/config';
import { readVendored, vendoredChart } from '../../lib/vendored';
import { Manifest, ROOT } from './dist';
import { helmEnv, runToolOk } from './tools';

/** `helm template` of the pinned chart for `props` with `valuesYaml` (the synth's values file). */
export async function renderChart(props: LearnflowPostgresProps, valuesYaml: string): Promise<Manifest[]> {
  const config = resolveConfig(props);
  const chart = vendoredChart(readVendored(ROOT), 'postgresql', config.chartVersion);
  if (!chart) throw new Error(`chart ${config.chartVersion} is not vendored`);
  const scratch = mkdtempSync(path.join(tmpdir(), 'learnflow-chart-'));
  try {
    const values = path.join(scratch, 'values.yaml');
    writeFileSync(values, valuesYaml);
    const out = await runToolOk('helm', ['template', config.releaseName, path.join(ROOT, chart.archive), '--namespace', config.namespace, '-f', values], {
      env: helmEnv(path.join(scratch, 'helm')),
    });
    return parseAllDocuments(out).map((d) => d.toJS() as Manifest).filter((m) => m && m.kind);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
