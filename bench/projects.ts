// The projects the bench synthesizes, each in its own temp folder with node_modules linked:
// copies of this project (real or generated migrations), a minimal cdk8s app and an app that only
// writes our output, both run the same way.
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { PROFILE_NAMES } from '../lib/profiles';
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
 * The smallest cdk8s app worth the name: one Chart with one ConfigMap, TypeScript run the same
 * way as ours (cdk8s.yaml's `app` is the same command, the same launcher).
 */
export function minimalProject(parent: string, name = 'minimal-cdk8s-app'): string {
  return cdk8sProject(parent, name, [
    "import { App, Chart } from 'cdk8s';",
    "import * as kplus from 'cdk8s-plus-27';",
    '',
    '// Writes to CDK8S_OUTDIR under the cdk8s CLI, else dist/.',
    'const app = new App();',
    "const chart = new Chart(app, 'minimal');",
    "new kplus.ConfigMap(chart, 'config', { data: { greeting: 'hello' } });",
    'app.synth();',
  ]);
}

/**
 * A cdk8s app with no logic that writes what `app` (a synthesized copy of this project) wrote:
 * every profile's manifests as plain ApiObjects, its Argo CD Application and its Helm values,
 * read from a JSON file. The least any cdk8s app producing our output can cost, run the same way.
 */
export function outputOnlyProject(parent: string, app: string, name = 'output-only-cdk8s-app'): string {
  const profiles = Object.fromEntries(PROFILE_NAMES.map((profile) => {
    const file = (...parts: string[]) => readFileSync(path.join(app, 'dist', profile, ...parts), 'utf8');
    const hasApplication = existsSync(path.join(app, 'dist', profile, 'argocd', 'application.yaml'));
    return [profile, {
      manifests: parseAllDocuments(file('learnflow-postgres.yaml')).map((d) => d.toJS()),
      application: hasApplication ? parse(file('argocd', 'application.yaml')) : null,
      values: parse(file('helm', 'postgresql-values.yaml')),
    }];
  }));
  const dir = cdk8sProject(parent, name, [
    "import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';",
    "import * as path from 'node:path';",
    "import { ApiObject, App, Chart, Yaml } from 'cdk8s';",
    "import 'cdk8s-plus-27';",
    '',
    'const root = process.env.LEARNFLOW_ROOT ?? __dirname;',
    "const profiles = JSON.parse(readFileSync(path.join(root, 'output.json'), 'utf8'));",
    'for (const [profile, { manifests, application, values }] of Object.entries<any>(profiles)) {',
    "  const dir = path.join(root, 'dist', profile);",
    "  const app = new App({ outdir: dir, outputFileExtension: '.yaml' });",
    "  const chart = new Chart(app, 'learnflow-postgres', { disableResourceNameHashes: true });",
    '  manifests.forEach((manifest: any, i: number) => new ApiObject(chart, `m${i}`, manifest));',
    '  app.synth();',
    '  if (application) {',
    "    const argo = new App({ outdir: path.join(dir, 'argocd'), outputFileExtension: '.yaml' });",
    "    new ApiObject(new Chart(argo, 'application'), 'application', application);",
    '    argo.synth();',
    '  }',
    "  mkdirSync(path.join(dir, 'helm'), { recursive: true });",
    "  writeFileSync(path.join(dir, 'helm', 'postgresql-values.yaml'), Yaml.stringify(values));",
    '}',
  ]);
  writeFileSync(path.join(dir, 'output.json'), JSON.stringify(profiles));
  return dir;
}

/** A TypeScript cdk8s app in `parent/name`, run by the same command and launcher as ours. */
function cdk8sProject(parent: string, name: string, main: readonly string[]): string {
  const dir = path.join(parent, name);
  mkdirSync(dir);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true }, null, 2) + '\n');
  writeFileSync(path.join(dir, 'cdk8s.yaml'), `language: typescript\napp: ${APP_COMMAND.join(' ')}\noutput: .cdk8s.out\n`);
  // The same launcher as ours (scripts/synth.cjs and the compile step it requires).
  if (APP_COMMAND.slice(1).some((a) => a.startsWith('scripts/'))) {
    mkdirSync(path.join(dir, 'scripts'));
    for (const file of ['synth.cjs', 'compile.cjs']) copyFileSync(path.join(ROOT, 'scripts', file), path.join(dir, 'scripts', file));
  }
  writeFileSync(path.join(dir, 'main.ts'), [...main, ''].join('\n'));
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}
