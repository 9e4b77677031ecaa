#!/usr/bin/env node
// Re-creates each vendored chart's unpacked folder from its archive (see charts/SOURCE.md):
// checks the archive's sha256 against vendored.json first, then replaces the folder with the
// archive's content, its top folder stripped. test/vendored.test.ts proves the result.
'use strict';
const { execFileSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const { mkdirSync, readFileSync, rmSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const { charts } = JSON.parse(readFileSync(path.join(root, 'vendored.json'), 'utf8'));
for (const chart of charts) {
  const archive = path.join(root, chart.archive);
  const actual = createHash('sha256').update(readFileSync(archive)).digest('hex');
  if (actual !== chart.sha256) {
    console.error(`unpack-charts: ${chart.archive}: sha256 is ${actual}, vendored.json records ${chart.sha256}; not unpacking`);
    process.exit(1);
  }
  const directory = path.join(root, chart.directory);
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  execFileSync('tar', ['-xzf', archive, '-C', directory, '--strip-components=1', '--no-same-owner', '--no-same-permissions'], { stdio: 'inherit' });
  console.log(`unpack-charts: ${chart.archive} -> ${chart.directory}/`);
}
