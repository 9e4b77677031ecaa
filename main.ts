// Entry point of `npm run synth` and `npx cdk8s synth`: renders every profile (or only
// LEARNFLOW_PROFILE) into dist/. Logic lives in lib/; this file reads the environment and reports.
import * as path from 'node:path';
import { reportFailure } from './lib/errors';
import { mirrorOutput, synthesize } from './lib/synth';
import { PhaseTimings } from './lib/timings';

// scripts/synth.cjs runs a compiled copy of this file from a cache folder and names the project.
const root = path.resolve(process.env.LEARNFLOW_ROOT ?? __dirname);
const dist = path.join(root, 'dist');
// LEARNFLOW_SYNTH_TIMINGS=1: where the time went, on stderr (performance.now() counts from process start).
const timings = process.env.LEARNFLOW_SYNTH_TIMINGS === '1' ? new PhaseTimings() : undefined;
timings?.add('start-up: Node.js, the libraries and our modules', performance.now());
try {
  const { profiles, withoutApplication } = synthesize({ root, outdir: dist, profile: process.env.LEARNFLOW_PROFILE || undefined, timings });
  // The cdk8s CLI empties its output folder before it starts the app, so cdk8s.yaml points it
  // at a scratch folder and dist/ is replaced only after a successful synth; the CLI's folder
  // (or --output) receives a copy.
  if (process.env.CDK8S_OUTDIR) mirrorOutput(dist, path.resolve(process.env.CDK8S_OUTDIR), profiles);
  process.stderr.write(`learnflow-postgres: synthesized ${profiles.map((p) => `dist/${p}/`).join(', ')}\n`);
  if (withoutApplication.length > 0) {
    process.stderr.write(`learnflow-postgres: no Argo CD Application for ${withoutApplication.join(', ')}: set argocd.repoURL (lib/profiles.ts) to this repository's Git URL\n`);
  }
} catch (error) {
  process.exitCode = reportFailure(error);
}
if (timings) process.stderr.write(`learnflow-postgres: wall time per phase\n${timings.format()}`);
