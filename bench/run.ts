// `npm run bench`: synthesis against a minimal cdk8s app and the library's load time, synthesis
// with 1,000 migrations, the migration check (lint and grammar) with and without 1,000 released
// migrations, the migration runner against plain psql and dbmate, and the test suite's wall
// time, all in one run; prints the tables and writes BENCHMARKS.md.
//
//   npm run bench [-- --runs N] [-- --skip-tests] [-- --skip-pitr] [-- --skip-pooling | --only-pooling] [-- --pitr-scale N]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ROOT, manifests } from '../test/support/dist';
import { smallMigrationSet } from '../test/support/generated-migrations';
import { startPostgres } from '../test/support/postgres';
import { projectCopy } from '../test/support/project';
import { DBMATE_VERSION, installDbmate } from './dbmate';
import { Command, Sample, formatMs, formatRatio, sampleInterleaved, timeCommand } from './measure';
import { LintCase, RELEASED_COUNT, benchLint } from './lint';
import { RunnerCase, Tool, benchMigrations } from './migrations';
import { PitrResults, benchPitr } from './pitr';
import { PoolingResults, benchPooling, poolingRatio, poolingSection } from './pooling';
import { ProfileShare, phaseTimings, precompile, profileByOwner, stairs } from './profile';
import { APP_COMMAND, appProject, minimalProject, outputOnlyProject } from './projects';
import { Machine, Target, loadAverage, machine, table, verdict } from './report';

const SMALL_SET_SIZE = 1000;
const PROFILE = 'development';

interface Options {
  /** Runs per case (medians); slow cases use min(runs, 5); short ones (direct synth commands, the runner on the real schema) 2 × runs + 1: they move most. */
  readonly runs: number;
  readonly skipTests: boolean;
  readonly skipPitr: boolean;
  readonly skipPooling: boolean;
  /** Only the pooling and replicas part, printed (BENCHMARKS.md untouched). */
  readonly onlyPooling: boolean;
  /** pgbench scale of the point-in-time recovery case (about 15 MB each; 75 is just over 1 GB). */
  readonly pitrScale: number;
  readonly output: string;
}

function parseOptions(argv: readonly string[]): Options {
  let runs = 7;
  let skipTests = false;
  let skipPitr = false;
  let skipPooling = false;
  let onlyPooling = false;
  let pitrScale = 75;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--runs' && /^[1-9][0-9]*$/.test(argv[i + 1] ?? '')) runs = Number(argv[++i]);
    else if (argv[i] === '--skip-tests') skipTests = true;
    else if (argv[i] === '--skip-pitr') skipPitr = true;
    else if (argv[i] === '--skip-pooling') skipPooling = true;
    else if (argv[i] === '--only-pooling') onlyPooling = true;
    else if (argv[i] === '--pitr-scale' && /^[1-9][0-9]*$/.test(argv[i + 1] ?? '')) pitrScale = Number(argv[++i]);
    else throw new Error(`unknown argument '${argv[i]}' (usage: npm run bench [-- --runs N] [-- --skip-tests] [-- --skip-pitr] [-- --skip-pooling | --only-pooling] [-- --pitr-scale N])`);
  }
  return { runs, skipTests, skipPitr, skipPooling, onlyPooling, pitrScale, output: path.join(ROOT, 'BENCHMARKS.md') };
}

const log = (message: string) => process.stderr.write(`bench: ${message}\n`);

interface SynthResults {
  readonly samples: Map<string, Sample>;
  /** Per variant: its name in the tables, its command as typed, and its layer in the staircase. */
  readonly labels: Map<string, { label: string; command: string; layer?: string }>;
  readonly profile: { totalMs: number; shares: ProfileShare[] };
  /** Median wall time per phase (LEARNFLOW_SYNTH_TIMINGS=1): the app, and the app with the generated migrations. */
  readonly phases: { readonly app: Map<string, number>; readonly small?: Map<string, number> };
  /** Manifests in the app's dist/, every profile. */
  readonly manifestCount: number;
  /** Staircase ids in order, and the alternatives shown under it. */
  readonly layers: readonly string[];
  readonly alternatives: readonly string[];
}

interface TestSuite {
  readonly seconds: number;
  readonly ok: boolean;
  readonly summary: string;
  /** The GitOps tier's one start-up inside the run (test/gitops/), as its test logs it. */
  readonly gitopsStartupMs?: number;
  /** Each test file's own time (its hooks and tests; files run side by side, a worker per core). */
  readonly files: readonly { readonly file: string; readonly seconds: number }[];
}

/** The whole suite's wall time that issue 13 set, before the PITR and Argo CD tiers existed. */
const SUITE_TARGET_SECONDS = 150;

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (options.onlyPooling) {
    const pooling = await benchPooling(3, log);
    const targets = poolingTargets(pooling);
    process.stdout.write(`${table(['Target', 'Measured', 'Result'], targets.map((t) => [t.what, t.measured, `**${verdict(t.pass)}**`]))}\n\n${poolingSection(pooling)}\n`);
    return;
  }
  const started = Date.now();
  const info = machine();
  const work = mkdtempSync(path.join(tmpdir(), 'learnflow-bench-'));
  const slowRuns = Math.min(options.runs, 5);
  const shortRuns = 2 * options.runs + 1;
  try {
    log(`preparing project copies in ${work}`);
    const app = appProject(work);
    // With 1,000 migrations the synth may refuse (a limit of lib/): measure what can be measured.
    let small: string;
    let smallSynthError: string | undefined;
    try {
      small = appProject(work, smallMigrationSet(SMALL_SET_SIZE));
    } catch (error) {
      smallSynthError = firstProblem(error);
      log(`synth with ${SMALL_SET_SIZE} migrations failed, its synth rows are marked FAIL: ${smallSynthError}`);
      small = projectCopy({ parent: work, migrations: smallMigrationSet(SMALL_SET_SIZE) });
    }
    const minimal = minimalProject(work);
    const outputOnly = outputOnlyProject(work, app);
    const compiled = projectCopy({ parent: work });
    precompile(compiled);
    const minimalCompiled = minimalProject(work, 'minimal-precompiled');
    precompile(minimalCompiled);

    log(`synthesis: ${shortRuns} runs per case, interleaved`);
    const synth = benchSynth({ app, small: smallSynthError ? undefined : small, minimal, outputOnly, compiled, minimalCompiled }, shortRuns, slowRuns);

    log(`migration check: ${slowRuns} runs per case, interleaved`);
    const lint = benchLint(work, slowRuns);

    const dbmate = installDbmate();
    if (!dbmate.installed) log(`dbmate rows skipped: ${dbmate.reason}`);
    log('migration runner: starting a throwaway PostgreSQL');
    const pg = await startPostgres();
    let runner: RunnerCase[];
    let postgresVersion: string;
    try {
      postgresVersion = pg.psql('postgres', 'SHOW server_version');
      runner = benchMigrations({
        pg,
        work,
        dbmate,
        profile: PROFILE,
        sets: [
          { id: 'real', label: 'the real schema, migrations/', project: app },
          { id: 'small', label: `${SMALL_SET_SIZE.toLocaleString('en')} small generated migrations`, project: small, bundleFromLib: smallSynthError !== undefined },
        ],
        noopSet: 'small',
        runs: (set) => (set === 'real' ? shortRuns : slowRuns),
      });
    } finally {
      await pg.stop();
    }

    const pitr = options.skipPitr ? undefined : await benchPitr(work, 3, options.pitrScale);
    const pooling = options.skipPooling ? undefined : await benchPooling(3, log);
    const tests = options.skipTests ? undefined : runTestSuite();
    const markdown = render({
      pitr,
      pooling,
      info,
      loadAtEnd: loadAverage(),
      postgresVersion,
      dbmate: dbmate.installed ? `dbmate ${dbmate.version} (npm \`dbmate@${DBMATE_VERSION}\`, installed into .bench/dbmate)` : `not measured: ${dbmate.reason}`,
      synth,
      lint,
      runner,
      tests,
      smallSynthError,
      options,
      benchSeconds: (Date.now() - started) / 1000,
    });
    writeFileSync(options.output, markdown);
    process.stdout.write(`${markdown.slice(markdown.indexOf('## Results'))}\n`);
    log(`wrote ${path.relative(process.cwd(), options.output) || options.output} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The first line of a synth failure that names the problem. */
function firstProblem(error: unknown): string {
  const lines = String(error instanceof Error ? error.message : error).split('\n').map((l) => l.replace(/^\s*\|\s?/, '').trim());
  return lines.find((l) => l && !l.startsWith('synth in') && !l.includes('synth failed')) ?? lines[0];
}

interface SynthProjects {
  readonly app: string;
  /** The app with the generated migrations; undefined when its synth failed. */
  readonly small: string | undefined;
  readonly minimal: string;
  /** An app with no logic that writes the app's output (see outputOnlyProject()). */
  readonly outputOnly: string;
  /** Copies with .js files beside the .ts ones (see precompile()). */
  readonly compiled: string;
  readonly minimalCompiled: string;
}

function benchSynth({ app, small, minimal, outputOnly, compiled, minimalCompiled }: SynthProjects, runs: number, slowRuns: number): SynthResults {
  const labels = new Map<string, { label: string; command: string; layer?: string }>();
  const variants: { id: string; command: Command }[] = [];
  const add = (id: string, label: string, command: Command, layer?: string) => {
    const typed = [path.basename(command.cmd) === path.basename(process.execPath) ? 'node' : command.cmd, ...command.args];
    labels.set(id, { label, command: typed.map(shellWord).join(' '), layer });
    variants.push({ id, command });
  };
  const appCommand = (cwd: string): Command => ({ cmd: process.execPath, args: APP_COMMAND.slice(1), cwd });
  const names: Record<string, string> = {
    app: 'the app (this project, real migrations)',
    floor: 'the floor: cdk8s-plus-27 loaded, nothing else',
  };
  const steps = stairs(app, compiled);
  for (const step of steps) add(step.id, names[step.id] ?? step.label, step.command, step.label);
  add('minimal', 'a minimal cdk8s app (one Chart, one ConfigMap), run the same way', appCommand(minimal));
  add('output-only', "our output with no logic: a cdk8s app writing the app's files from plain objects, run the same way", appCommand(outputOnly));
  add('minimal-precompiled', 'the minimal app precompiled', { cmd: process.execPath, args: ['main.js'], cwd: minimalCompiled },
    'the minimal app precompiled the same way: `node main.js`');
  if (small) add('app-small', `the app with ${SMALL_SET_SIZE.toLocaleString('en')} small migrations`, appCommand(small));
  const npx = (cwd: string, ...args: string[]): Command => ({ cmd: 'npx', args: ['cdk8s', ...args], cwd });
  const cli: { id: string; label: string; command: Command }[] = [
    { id: 'npx-app', label: 'the app through the cdk8s CLI', command: npx(app, 'synth') },
    { id: 'npx-minimal', label: 'the minimal app through the cdk8s CLI', command: npx(minimal, 'synth') },
    { id: 'npx-version', label: 'the CLI alone (its fixed cost)', command: npx(minimal, '--version') },
  ];
  for (const c of cli) add(c.id, c.label, c.command);

  const samples = new Map<string, Sample>([
    ...sampleInterleaved(variants.filter((v) => !v.id.startsWith('npx-')).map((v) => ({ id: v.id, run: () => timeCommand(v.command) })), runs),
    ...sampleInterleaved(variants.filter((v) => v.id.startsWith('npx-')).map((v) => ({ id: v.id, run: () => timeCommand(v.command) })), slowRuns),
  ]);
  log('synthesis: CPU profile of one app run, and its phases');
  const profile = profileByOwner(appCommand(app), app);
  const phases = { app: phaseTimings(appCommand(app), runs), ...(small ? { small: phaseTimings(appCommand(small), runs) } : {}) };
  const manifestCount = ['development', 'production'].reduce((sum, profile) => sum + manifests(profile, path.join(app, 'dist')).length, 0);
  return { samples, labels, profile, phases, manifestCount, layers: steps.filter((t) => t.kind === 'layer').map((t) => t.id), alternatives: steps.filter((t) => t.kind === 'alternative').map((t) => t.id) };
}

function runTestSuite(): TestSuite {
  log('test suite: npx vitest run (once)');
  const report = path.join(mkdtempSync(path.join(tmpdir(), 'learnflow-bench-tests-')), 'vitest.json');
  const started = process.hrtime.bigint();
  const run = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`], {
    cwd: ROOT, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' }, maxBuffer: 256 * 1024 * 1024,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const results: { name: string; startTime: number; endTime: number }[] = existsSync(report) ? JSON.parse(readFileSync(report, 'utf8')).testResults : [];
  rmSync(path.dirname(report), { recursive: true, force: true });
  const files = results.map((r) => ({ file: path.relative(ROOT, r.name), seconds: (r.endTime - r.startTime) / 1000 }));
  const output = `${run.stdout}\n${run.stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
  const summary = ['Test Files', 'Tests']
    .map((what) => new RegExp(`^\\s*${what}\\s+(.+)$`, 'm').exec(output)?.[1]?.trim())
    .filter(Boolean)
    .join('; ');
  const gitops = /GitOps tier start-up \([^)]*\): (\d+) ms/.exec(output);
  return { seconds, ok: run.status === 0, summary: summary || `exit ${run.status}`, files, ...(gitops ? { gitopsStartupMs: Number(gitops[1]) } : {}) };
}

const shellWord = (word: string) => (/^[A-Za-z0-9_./=:-]+$/.test(word) ? word : `"${word.replace(/(["\\$`])/g, '\\$1')}"`);

// ---------------------------------------------------------------------------------------------
// BENCHMARKS.md

interface RenderInput {
  readonly info: Machine;
  readonly loadAtEnd: string;
  readonly postgresVersion: string;
  readonly dbmate: string;
  readonly synth: SynthResults;
  readonly lint: LintCase[];
  readonly runner: RunnerCase[];
  readonly tests: TestSuite | undefined;
  readonly pitr: PitrResults | undefined;
  readonly pooling: PoolingResults | undefined;
  /** Why the synth with the generated migrations failed, if it did. */
  readonly smallSynthError: string | undefined;
  readonly options: Options;
  readonly benchSeconds: number;
}

function render(input: RenderInput): string {
  const { info, synth, runner } = input;
  const s = (id: string) => synth.samples.get(id)!;
  const smallSynth = synth.samples.get('app-small');
  const smallFailed = `synth fails: ${input.smallSynthError}`;
  const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : undefined);
  const spread = (sample: Sample) => `${formatMs(Math.min(...sample.runs))}–${formatMs(Math.max(...sample.runs))}`;

  const app = s('app').median;
  const synthRow = (id: string, ratioText = '') => {
    const sample = s(id);
    const { label, command } = synth.labels.get(id)!;
    return [label, `\`${command}\``, formatMs(sample.median), spread(sample), String(sample.runs.length), ratioText];
  };
  const vsApp = (id: string, base = 'app') => `${base === 'app' ? 'the app' : 'the app via the CLI'} ÷ this = ${formatRatio(s(base).median / s(id).median)}`;
  const synthTable = table(['Case', 'Command', 'Median', 'Min–max', 'Runs', 'Ratio'], [
    synthRow('app'),
    synthRow('minimal', vsApp('minimal')),
    synthRow('floor', vsApp('floor')),
    synthRow('output-only', `${vsApp('output-only')}; this ÷ the minimal app = ${formatRatio(s('output-only').median / s('minimal').median)}`),
    smallSynth
      ? synthRow('app-small', `this ÷ the app = ${formatRatio(smallSynth.median / app)}`)
      : [`the app with ${SMALL_SET_SIZE.toLocaleString('en')} small migrations`, `\`${synth.labels.get('app')!.command}\``, '**failed**', '', '', smallFailed],
    synthRow('npx-app'),
    synthRow('npx-minimal', vsApp('npx-minimal', 'npx-app')),
    synthRow('npx-version'),
  ]);

  const tools: Tool[] = ['runner', 'psql', 'dbmate'];
  const toolName: Record<Tool, string> = { runner: 'runner (the Job from dist/)', psql: 'plain psql -1 (floor)', dbmate: 'dbmate (peer)' };
  const cell = (c: RunnerCase, tool: Tool) => {
    const sample = c.samples.get(tool);
    return sample ? `${formatMs(sample.median)} (${spread(sample)}, n=${sample.runs.length})` : tool === 'psql' && c.id.startsWith('noop') ? 'n/a' : 'skipped';
  };
  const runnerRatio = (c: RunnerCase, tool: Tool) => ratio(c.samples.get('runner')?.median, c.samples.get(tool)?.median);
  const runnerTable = table(['Case', ...tools.map((t) => toolName[t]), 'runner ÷ psql', 'runner ÷ dbmate'], runner.map((c) => [
    c.label,
    ...tools.map((t) => cell(c, t)),
    fmtRatio(runnerRatio(c, 'psql')),
    fmtRatio(runnerRatio(c, 'dbmate')),
  ]));

  const lintCase = (id: LintCase['id']) => input.lint.find((c) => c.id === id)!;
  const lintTable = table(['Case', 'the check alone (warm, in process)', '`npm run migrations -- check` (a whole process)'], input.lint.map((c) => [
    c.label,
    `${formatMs(c.check.median)} (${spread(c.check)}, n=${c.check.runs.length})`,
    `${formatMs(c.command.median)} (${spread(c.command)}, n=${c.command.runs.length})`,
  ]));

  const targets: Target[] = [
    target(`the migration check with ${RELEASED_COUNT.toLocaleString('en')} released migrations and one new ≤ 1.2× with one migration in all (the check alone)`, 1.2,
      ratio(lintCase('released').check.median, lintCase('one').check.median)),
    target(`the same, as \`npm run migrations -- check\``, 1.2, ratio(lintCase('released').command.median, lintCase('one').command.median)),
    target('`app` command ≤ 1.3× the minimal cdk8s app', 1.3, ratio(app, s('minimal').median)),
    target('`app` command ≤ 3× the floor', 3, ratio(app, s('floor').median)),
    smallSynth
      ? target(`synth with ${SMALL_SET_SIZE.toLocaleString('en')} migrations ≤ 1.5× synth with the real ones`, 1.5, ratio(smallSynth.median, app))
      : { what: `synth with ${SMALL_SET_SIZE.toLocaleString('en')} migrations ≤ 1.5× synth with the real ones`, goal: '≤ 1.50×', measured: smallFailed, pass: false },
    ...runner.flatMap((c) => c.id.startsWith('noop')
      ? [target(`${c.label}: runner no slower than dbmate`, 1, runnerRatio(c, 'dbmate'))]
      : [
          target(`${c.label}: runner ≤ 1.3× plain psql`, 1.3, runnerRatio(c, 'psql')),
          target(`${c.label}: runner no slower than dbmate`, 1, runnerRatio(c, 'dbmate')),
        ]),
  ];
  targets.push(...pitrTargets(input.pitr), ...poolingTargets(input.pooling));
  if (input.tests) targets.push(target(`the whole suite (\`npx vitest run\`) ≤ ${SUITE_TARGET_SECONDS} s wall time`, SUITE_TARGET_SECONDS, input.tests.seconds, 's'));
  const targetTable = table(['Target', 'Measured', 'Result'], targets.map((t) => [t.what, t.measured, `**${verdict(t.pass)}**`]));

  const stairsTable = table(['Layer', 'Median', 'Adds, or compared'], [
    ...synth.layers.map((id, i, all) => [
      synth.labels.get(id)!.layer!,
      formatMs(s(id).median),
      i === 0 ? '' : `+${formatMs(s(id).median - s(all[i - 1]).median)}`,
    ]),
    ...synth.alternatives.map((id) => [synth.labels.get(id)!.layer!, formatMs(s(id).median), `${formatRatio(s(id).median / s('floor').median)} the floor`]),
    [synth.labels.get('minimal-precompiled')!.layer!, formatMs(s('minimal-precompiled').median),
      `the precompiled app ÷ this = ${formatRatio(s('precompiled').median / s('minimal-precompiled').median)}`],
  ]);
  const profileTable = table(['Owner of the code', 'Self time', 'Share'], synth.profile.shares.slice(0, 10).map((p) => [p.owner, formatMs(p.ms), `${(p.share * 100).toFixed(0)} %`]));
  const phase = (map: Map<string, number> | undefined, name: string) => map?.get(name);
  const phaseNames = [...synth.phases.app.keys()];
  const phaseTable = table(['Phase', 'the app', `the app with ${SMALL_SET_SIZE.toLocaleString('en')} migrations`, 'difference'], [
    ...phaseNames.map((name) => {
      const a = phase(synth.phases.app, name)!;
      const b = phase(synth.phases.small, name);
      return [name, formatMs(a), b === undefined ? 'n/a' : formatMs(b), b === undefined ? '' : `${b >= a ? '+' : '−'}${formatMs(Math.abs(b - a))}`];
    }),
  ]);
  const libraryPhases = (phase(synth.phases.app, 'cdk8s synthesis (Chart.toJson)') ?? 0) + (phase(synth.phases.app, 'YAML') ?? 0);
  const renderPhases = libraryPhases + (phase(synth.phases.app, 'building the constructs') ?? 0);
  const headroom = 0.3 * s('minimal').median;
  const launcherCost = s('app').median - s('precompiled').median;
  const modulesCost = s('modules').median - s('floor').median;
  const synthCost = s('precompiled').median - s('modules').median;

  const tests = input.tests
    ? `\`npx vitest run\`, once: **${input.tests.seconds.toFixed(1)} s** wall time (${input.tests.summary}${input.tests.ok ? '' : '; the suite FAILED, so this time may be short'}).` +
      (input.tests.gitopsStartupMs !== undefined
        ? ` Of it, the GitOps tier's one start-up (API server, redis, Argo CD's repo-server and application controller, the OCI registry, the Git repository synthesized and committed), shared by its tests: **${(input.tests.gitopsStartupMs / 1000).toFixed(1)} s**.`
        : '') + suiteTiers(input.tests)
    : 'Not run (`--skip-tests`).';

  return `# Benchmarks

Generated by \`npm run bench\` (bench/run.ts) on ${info.date}; do not edit by hand, re-run it.

## Machine

| | |
| --- | --- |
| CPU | ${info.cpu}, ${info.cores} cores |
| Memory | ${info.memoryGiB} GiB |
| OS | ${info.os} |
| Node.js | ${info.node} |
| PostgreSQL | ${input.postgresVersion} (throwaway cluster: initdb on loopback, fsync off, as the tests run it) |
| dbmate | ${input.dbmate} |
| Packages | ${Object.entries(info.packages).map(([p, v]) => `${p} ${v}`).join(', ')} |
| Load average (1/5/15 min) | ${info.loadAtStart} at the start, ${input.loadAtEnd} at the end |
| Bench wall time | ${input.benchSeconds.toFixed(0)} s |

## Results

Medians of ${2 * input.options.runs + 1} runs for the short cases (direct synth commands, the runner on the real schema) and
${Math.min(input.options.runs, 5)} for the long ones (the cdk8s CLI, the runner's ${SMALL_SET_SIZE.toLocaleString('en')}-migration cases), wall time from spawn to exit,
after one untimed warm-up run each; the variants of a table run round-robin, so a busy moment
of the machine hits all of them alike.

### Targets

${targetTable}

### Synthesis

Each command runs in its own temp copy (node_modules linked): this project, or a minimal cdk8s
app with one Chart and one ConfigMap whose \`cdk8s.yaml\` has the same \`app\` command. The floor is
loading cdk8s-plus-27 and nothing else. Both profiles (development, production) are rendered.

${synthTable}

### Migration check (lint and grammar)

The check \`npm test\` runs over migrations/ (lib/migrations/check.ts): PostgreSQL's grammar and
squawk's lint over the migrations not yet released. Two copies judge the same new migration:
one holding only it, one holding it after ${RELEASED_COUNT.toLocaleString('en')} migrations that \`released.tsv\` lists, which the
check knows by name only (one listing, one small read). The synth does not run the check, so it
adds nothing to the synth's rows above.

${lintTable}

### Migration runner

One PostgreSQL server, a fresh database per run owned by the application user (the chart's
setup), the same up files for every tool: the runner is the Job from the copy's \`dist/\` (its
ConfigMaps laid out like the kubelet's mount, \`sh runner.sh migrate\`); the floor is
\`psql -X -1 -v ON_ERROR_STOP=1 -f all.sql\` (every up file concatenated, one transaction, no
bookkeeping); dbmate runs \`--no-dump-schema migrate\` on the same files in its own layout (one
transaction per migration, like the runner). Every run is checked afterwards: the tables
exist and the tool recorded every migration. \`PGSSLMODE=disable\` for all three.${input.smallSynthError ? `

The synth of the ${SMALL_SET_SIZE.toLocaleString('en')} generated migrations failed (${input.smallSynthError}), so their
runner rows run the same runner.sh on the bundle lib/migrations/bundle.ts renders for them (runner, plan.tsv and
files, laid out like the mount), with the real Job's command and environment.` : ''}

${runnerTable}

### Point-in-time recovery

${pitrSection(input.pitr)}

### Pooling and replicas

${poolingSection(input.pooling)}

### Test suite

${tests}

## Where the synth's time goes

Each layer adds one thing to the one before (medians, same runs as above):

${stairsTable}

Of the app's ${formatMs(app)}: cdk8s-plus-27 and Node ${formatMs(s('floor').median)}, loading our modules (and cdk8s, yaml) ${formatMs(modulesCost)},
the synth of both profiles ${formatMs(synthCost)}, the launcher (scripts/synth.cjs: hashing the sources to find their
compiled copy) ${formatMs(launcherCost)}. CPU profile of one run of the app as it runs today (main thread, self time by
owner; "our code" is the compiled copy of main.ts and lib/ the launcher runs):

${profileTable}

The synth's phases, as \`LEARNFLOW_SYNTH_TIMINGS=1\` prints them (medians of ${2 * input.options.runs + 1} runs each; summed over
both profiles; start-up counts from the process's start):

${phaseTable}

The 1.3× target leaves ${formatMs(headroom)} (0.3 × the minimal app's ${formatMs(s('minimal').median)}) for everything the app does
beyond one ConfigMap. cdk8s's own two steps for our ${synth.manifestCount} manifests (both profiles), turning the
constructs into JSON (\`Chart.toJson\`; our hardening and naming passes over its result are
a fraction of a millisecond) and the JSON into YAML (cdk8s's \`Yaml.stringify\`), took
${formatMs(libraryPhases)}: ${formatRatio(libraryPhases / headroom)} the headroom. With building the constructs (cdk8s-plus-27's Jobs,
CronJobs and Roles, and our configuration, validation and hashing), rendering the manifests took ${formatMs(renderPhases)}
(${formatRatio(renderPhases / headroom)} the headroom), before start-up, reading migrations/ or writing dist/.

The same output costs that much with no logic at all: a cdk8s app that only writes the app's files (the
${synth.manifestCount} manifests as plain \`ApiObject\`s, the Argo CD Applications and the Helm values, read from JSON)
takes ${formatMs(s('output-only').median)}, ${formatRatio(s('output-only').median / s('minimal').median)} the minimal app, run the same way. The app takes
${formatRatio(app / s('output-only').median)} that floor for its output.

## How to reproduce

\`\`\`sh
npm ci
npm run bench                      # about 3-5 minutes on 2 cores; rewrites BENCHMARKS.md
npm run bench -- --runs 9          # more runs per case
npm run bench -- --skip-tests      # without the test suite's wall time
\`\`\`

Needs what the tests need (PostgreSQL server binaries: \`initdb\`, \`pg_ctl\`, \`psql\`) and, once,
the npm registry: dbmate is not a dependency of the project (its per-platform binary packages
are published unevenly and can break \`npm ci\`), so the bench installs \`dbmate@${DBMATE_VERSION}\` into
the gitignored \`.bench/dbmate\` on first use and marks its rows skipped when that fails. Numbers
move with the machine and its load (see the load average above): compare ratios, not times,
across machines.
`;
}

/** A target `measured ≤ limit`: a ratio, or with `unit` a quantity such as seconds. */
function target(what: string, limit: number, measured: number | undefined, unit?: string): Target {
  const show = (n: number) => (unit ? `${n.toFixed(1)} ${unit}` : formatRatio(n));
  return {
    what,
    goal: `≤ ${show(limit)}`,
    measured: measured === undefined ? 'not measured' : `${show(measured)} (limit ${show(limit)})`,
    pass: measured === undefined ? undefined : measured <= limit,
  };
}

/**
 * Where the suite's time goes, by tier (the folder under test/): each tier's files' own time
 * summed, its share of all files' time, and its slowest file. Files run side by side (a worker
 * per core), so the sum exceeds the wall time.
 */
function suiteTiers(tests: TestSuite): string {
  if (tests.files.length === 0) return '';
  const tierOf = (file: string) => (file.split('/').length > 2 ? file.split('/').slice(0, 2).join('/') + '/' : 'test/*.test.ts');
  const tiers = new Map<string, { seconds: number; files: number; slowest: { file: string; seconds: number } }>();
  for (const f of tests.files) {
    const tier = tiers.get(tierOf(f.file)) ?? { seconds: 0, files: 0, slowest: f };
    tiers.set(tierOf(f.file), { seconds: tier.seconds + f.seconds, files: tier.files + 1, slowest: f.seconds > tier.slowest.seconds ? f : tier.slowest });
  }
  const total = tests.files.reduce((sum, f) => sum + f.seconds, 0);
  const rows = [...tiers.entries()].sort((a, b) => b[1].seconds - a[1].seconds).map(([tier, t]) => [
    `\`${tier}\``, String(t.files), `${t.seconds.toFixed(1)} s`, `${((t.seconds / total) * 100).toFixed(0)} %`, `\`${path.basename(t.slowest.file)}\` ${t.slowest.seconds.toFixed(1)} s`,
  ]);
  return `\n\nWhere it goes (each file's own time, hooks included; ${total.toFixed(0)} s in all over ${tests.files.length} files, run side by side):\n\n` +
    table(['Tier', 'Files', 'Time', 'Share', 'Slowest file'], rows);
}

function pitrTargets(pitr: PitrResults | undefined): Target[] {
  const size = pitr ? `${(pitr.databaseBytes / 2 ** 30).toFixed(2)} GiB` : '≥ 1 GB';
  const limit = (pitr?.archiveTimeoutSeconds ?? 60) + 10;
  const worst = pitr ? Math.max(...pitr.atRisk) : undefined;
  return [
    target(`point-in-time recovery of a ${size} database ≤ 1.3× the floor (same base backup and WAL by hand)`, 1.3, pitr && pitr.ours.median / pitr.floor.median),
    {
      ...target(`data at risk ≤ archive_timeout + 10 s (${limit} s)`, 1, worst === undefined ? undefined : worst / limit),
      measured: worst === undefined ? 'not measured' : `worst ${worst.toFixed(1)} s of ${pitr!.atRisk.length} losses (${formatRatio(worst / limit)} the limit)`,
    },
  ];
}

function pitrSection(pitr: PitrResults | undefined): string {
  if (!pitr) return 'Not measured (`--skip-pitr`).';
  const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  const spread = (sample: Sample) => `${formatMs(Math.min(...sample.runs))}–${formatMs(Math.max(...sample.runs))}`;
  return `A database of ${mb(pitr.databaseBytes)} (\`pgbench -i\`), its base backup taken with the CronJob's command
(${mb(pitr.baseBackupBytes)} compressed), then 60 s of \`pgbench\` writing ${pitr.walSegments} archived segments
(${mb(pitr.walBytes)} compressed). Both variants recover the latest state from the same base backup
and archive into an empty directory and stop the server; runs interleaved.

${table(['Variant', 'Median', 'Min–max', 'Runs'], [
    ['the restore template\'s command (\`restore.sh\`, RESTORE_TARGET=latest)', formatMs(pitr.ours.median), spread(pitr.ours), String(pitr.ours.runs.length)],
    ['floor: tar, restore_command, recovery.signal, \`pg_ctl\` by hand', formatMs(pitr.floor.median), spread(pitr.floor), String(pitr.floor.runs.length)],
    ['ratio', formatRatio(pitr.ours.median / pitr.floor.median), '', ''],
  ])}

Data at risk with archive_timeout ${pitr.archiveTimeoutSeconds} s: a primary committing every 200 ms is killed and its
data directory deleted at a random moment, then the latest state is recovered from the archive:
${pitr.atRisk.map((s) => `${s.toFixed(1)} s`).join(', ')} of commits lost (limit ${pitr.archiveTimeoutSeconds + 10} s).`;
}

const fmtRatio = (r: number | undefined) => (r === undefined ? '' : formatRatio(r));

main().catch((error) => {
  process.stderr.write(`bench: failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exitCode = 1;
});

function poolingTargets(p: PoolingResults | undefined): Target[] {
  const ratioPooled = p ? poolingRatio(p, 'pooled') : undefined;
  return [
    { ...target('select-only through the pooler at 8 clients ≥ 0.8× direct connections', 1 / 0.8, ratioPooled ? 1 / ratioPooled : undefined), goal: '≥ 0.80×', measured: ratioPooled === undefined ? 'not measured' : `${formatRatio(ratioPooled)} of direct` },
    {
      what: `${p?.overload.clients ?? 80} clients (4× max_connections): the pooler completes every transaction, direct connections fail`,
      goal: 'pooled all, direct fails',
      measured: p ? `pooled ${p.overload.pooled.transactions}/${p.overload.expected}; direct ${p.overload.direct.ok ? 'completed' : 'failed'}` : 'not measured',
      pass: !!p && p.overload.pooled.ok && p.overload.pooled.transactions === p.overload.expected && !p.overload.direct.ok,
    },
  ];
}
