// The project's TypeScript as plain JavaScript, for `npm run synth` (scripts/synth.cjs) and the
// command line (bin/learnflow-postgres). Compiling on the fly (tsx) costs more than a synth, so
// main.ts, lib/ and imports/ are transpiled once with esbuild into a cache folder named after
// their content, and reused until any of them changes. No type-check here: `npm test`
// type-checks. The cache holds no state of its own: deleting node_modules/.cache/learnflow-postgres/
// only costs one transpile.
'use strict';
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

// What runs: main.ts and lib/ (with the scripts lib/ embeds), and imports/.
const SOURCE_DIRS = ['lib', 'imports'];
// Compilations kept besides the current one (other branches, other copies of the project).
const KEEP = 4;
// Older ones are removed only when unused for this long: a command of another copy of the
// project may still be running from one (the command line loads its modules as it needs them).
const UNUSED_MS = 60 * 60 * 1000;

function files(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? files(full) : [full];
  });
}

/** The folder holding the compiled project `root` (main.js, lib/…, imports/…), compiled if needed. */
function compiledProject(root) {
  const sources = [path.join(root, 'main.ts'), ...SOURCE_DIRS.flatMap((d) => files(path.join(root, d)))].sort();
  const hash = createHash('sha256');
  for (const file of sources) hash.update(path.relative(root, file)).update('\0').update(fs.readFileSync(file)).update('\0');
  const cacheRoot = path.join(root, 'node_modules', '.cache', 'learnflow-postgres');
  const compiled = path.join(cacheRoot, hash.digest('hex').slice(0, 16));
  if (fs.existsSync(compiled)) return markUsed(compiled);

  const { transformSync } = require('esbuild');
  const staging = `${compiled}.${process.pid}.tmp`;
  for (const file of sources) {
    const rel = path.relative(root, file);
    const target = path.join(staging, rel.replace(/\.ts$/, '.js'));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (file.endsWith('.ts')) {
      const { code } = transformSync(fs.readFileSync(file, 'utf8'), { loader: 'ts', format: 'cjs', target: 'node20', sourcefile: rel });
      fs.writeFileSync(target, code);
    } else {
      fs.copyFileSync(file, target);
    }
  }
  try {
    fs.renameSync(staging, compiled);
  } catch (error) {
    // Another process compiled the same sources first: theirs is identical.
    fs.rmSync(staging, { recursive: true, force: true });
    if (!fs.existsSync(compiled)) throw error;
  }
  removeUnused(cacheRoot, compiled);
  return compiled;
}

/** Records that `dir` is in use now (its mtime), so that no other copy removes it; returns it. */
function markUsed(dir) {
  const now = new Date();
  try {
    fs.utimesSync(dir, now, now);
  } catch {
    // A read-only cache is still a usable one.
  }
  return dir;
}

/** Removes compilations beyond the KEEP most recently used, and abandoned staging folders, unused for UNUSED_MS. */
function removeUnused(cacheRoot, current) {
  const unusedSince = Date.now() - UNUSED_MS;
  const entries = fs.readdirSync(cacheRoot).map((name) => path.join(cacheRoot, name)).filter((dir) => dir !== current)
    .map((dir) => ({ dir, used: fs.statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? Infinity }));
  const staging = entries.filter((e) => e.dir.endsWith('.tmp'));
  const compilations = entries.filter((e) => !e.dir.endsWith('.tmp')).sort((a, b) => b.used - a.used);
  for (const { dir, used } of [...staging, ...compilations.slice(KEEP)]) {
    if (used < unusedSince) fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { compiledProject, KEEP, UNUSED_MS };
