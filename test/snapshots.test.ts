// Review diffs the cdk8s way. The committed profiles are reviewed where they are rendered, in
// dist/ (test/synth.test.ts proves it is exactly what the synth writes), so they are not copied
// here. These snapshots cover prop combinations no profile uses, one file per rendered file: the
// defaults in full; for each variant its Helm values (and Application) in full and its manifests
// as what they change against the defaults. Embedded scripts and the
// content hashes in names are shown as placeholders: both are reviewed in their own files and in
// dist/, and a script change then touches no snapshot.
//
// Behaviour is asserted elsewhere; these only make changes visible. After reviewing a diff:
//   npm run test:update                      every snapshot (this file only)
//   npm run test:update -- -t 'backups'      one variant
import { describe, expect, it } from 'vitest';
import { VARIANTS, manifestChanges, renderVariant, yamlDocuments } from './support/variants';

const MANIFESTS = 'learnflow-postgres.yaml';
const defaults = renderVariant('defaults', {});

describe('the defaults', () => {
  it.each([...defaults.keys()])('%s', async (file) => {
    await expect(yamlDocuments(defaults.get(file)!)).toMatchFileSnapshot(`__snapshots__/defaults/${file}`);
  });
});

describe.each(Object.entries(VARIANTS))('%s', (name, props) => {
  const files = renderVariant(name, props);

  it.each([...files.keys()])('%s', async (file) => {
    const documents = files.get(file)!;
    // The manifests as what they change against the defaults; the small files in full.
    const text = file === MANIFESTS
      ? `# What these props change in ${MANIFESTS} against __snapshots__/defaults/.\n${manifestChanges(defaults.get(MANIFESTS)!, documents, props)}`
      : yamlDocuments(documents);
    await expect(text).toMatchFileSnapshot(`__snapshots__/${name}/${file}`);
  });
});
