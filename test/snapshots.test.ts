// Review diffs: a change to any rendered manifest or values file shows up here as a snapshot
// diff. Behaviour is asserted elsewhere; these only make changes visible. Update with
// `npm run test:update` after reviewing the diff.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROFILE_NAMES } from '../lib/profiles';
import { DIST } from './support/dist';

describe.each(PROFILE_NAMES)('dist/%s snapshot', (profile) => {
  const files = ['learnflow-postgres.yaml', ...['helm', 'argocd'].filter((sub) => existsSync(path.join(DIST, profile, sub))).flatMap((sub) => readdirSync(path.join(DIST, profile, sub)).map((f) => `${sub}/${f}`))];
  it.each(files)('%s', async (file) => {
    const text = readFileSync(path.join(DIST, profile, file), 'utf8');
    await expect(text).toMatchFileSnapshot(`__snapshots__/${profile}/${file}`);
  });
});
