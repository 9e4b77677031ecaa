// The projects the bench synthesizes, each in its own temp folder with node_modules linked:
// copies of this project (real or generated migrations) and a minimal cdk8s app run the same way.
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT } from '../test/support/dist';
import { MigrationFiles } from '../test/support/generated-migrations';
import { APP_COMMAND, projectCopy, synthProjectOrThrow } from '../test/support/project';

export { APP_COMMAND };

/** A copy of this project, synthesized once so that its dist/ holds the migration Job to run. */
export function appProject(parent: string, migrations?: MigrationFiles): string {
  const dir = projectCopy({ parent, ...(migrations ? { migrations } : {}) });
  synthProjectOrThrow(dir);
  return dir;
}

/**
 * The smallest cdk8s app worth the name: one Chart with one ConfigMap, TypeScript run through
 * tsx, with a cdk8s.yaml whose `app` is the same command as ours.
 */
export function minimalProject(parent: string, name = 'minimal-cdk8s-app'): string {
  const dir = path.join(parent, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'minimal-cdk8s-app', private: true }, null, 2) + '\n');
  writeFileSync(path.join(dir, 'cdk8s.yaml'), `language: typescript\napp: ${APP_COMMAND.join(' ')}\noutput: .cdk8s.out\n`);
  // The same launcher as ours (scripts/synth.cjs and the compile step it requires).
  if (APP_COMMAND.slice(1).some((a) => a.startsWith('scripts/'))) {
    mkdirSync(path.join(dir, 'scripts'));
    for (const file of ['synth.cjs', 'compile.cjs']) copyFileSync(path.join(ROOT, 'scripts', file), path.join(dir, 'scripts', file));
  }
  writeFileSync(
    path.join(dir, 'main.ts'),
    [
      "import { App, Chart } from 'cdk8s';",
      "import * as kplus from 'cdk8s-plus-27';",
      '',
      '// Writes to CDK8S_OUTDIR under the cdk8s CLI, else dist/.',
      'const app = new App();',
      "const chart = new Chart(app, 'minimal');",
      "new kplus.ConfigMap(chart, 'config', { data: { greeting: 'hello' } });",
      'app.synth();',
      '',
    ].join('\n'),
  );
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}
