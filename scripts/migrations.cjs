#!/usr/bin/env node
// `npm run migrations -- check|release`: the pull-request check of migrations/ (PostgreSQL's
// grammar and the lock-safety lint over the migrations not yet released, as npm test runs it),
// and the command that records every current migration as released (migrations/released.tsv).
// Runs the same compiled copy of lib/ as the synth (scripts/compile.cjs); writes nothing else.
'use strict';
const path = require('node:path');
const { compiledProject } = require('./compile.cjs');

const USAGE = 'usage: npm run migrations -- check | release';
const root = path.resolve(process.env.LEARNFLOW_ROOT || path.join(__dirname, '..'));
const [command, ...rest] = process.argv.slice(2);
if (rest.length > 0 || !['check', 'release', '--help', '-h'].includes(command)) {
  process.stderr.write(`learnflow-migrations: ${command === undefined ? 'no command' : `unknown arguments '${process.argv.slice(2).join(' ')}'`} (${USAGE})\n`);
  process.exit(1);
}
if (command !== 'check' && command !== 'release') {
  process.stdout.write(`${USAGE}\n  check    parse and lint the migrations not yet released; exit 1 on any problem\n  release  record every migration in migrations/ as released: the check leaves them alone from then on\n`);
  process.exit(0);
}
const { runMigrationsCommand } = require(path.join(compiledProject(root), 'lib', 'migrations', 'command.js'));
runMigrationsCommand(command, root).then((code) => { process.exitCode = code; }, (error) => {
  process.stderr.write(`learnflow-migrations: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
