// Entry point of `npm run synth` and `npx cdk8s synth`: renders every profile (or only
// LEARNFLOW_PROFILE) into dist/. Logic lives in lib/; this file reads the environment and reports.
import * as path from 'node:path';
import { reportFailure } from './lib/errors';
import { mirrorOutput, synthesize } from './lib/synth';

// scripts/synth.cjs runs a compiled copy of this file from a cache folder and names the project.
const root = path.resolve(process.env.LEARNFLOW_ROOT ?? __dirname);
const dist = path.join(root, 'dist');
try {
  const profiles = synthesize({ root, outdir: dist, profile: process.env.LEARNFLOW_PROFILE || undefined });
  // The cdk8s CLI empties its output folder before it starts the app, so cdk8s.yaml points it
  // at a scratch folder and dist/ is replaced only after a successful synth; the CLI's folder
  // (or --output) receives a copy.
  if (process.env.CDK8S_OUTDIR) mirrorOutput(dist, path.resolve(process.env.CDK8S_OUTDIR), profiles);
  process.stderr.write(`learnflow-postgres: synthesized ${profiles.map((p) => `dist/${p}/`).join(', ')}\n`);
} catch (error) {
  process.exitCode = reportFailure(error);
}
