import { Yaml } from 'cdk8s';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManifestYaml, plainJson } from '../lib/manifest-yaml';
import { PROFILE_NAMES } from '../lib/profiles';
import { manifests } from './support/dist';

describe('ManifestYaml', () => {
  afterEach(() => vi.restoreAllMocks());

  it('writes the bytes Yaml.stringify writes, for every manifest of dist/', () => {
    for (const profile of PROFILE_NAMES) {
      const docs = manifests(profile);
      expect(new ManifestYaml().documents(docs)).toBe(Yaml.stringify(...docs));
    }
  });

  it('serializes a manifest that both profiles share once', () => {
    const shared = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'm' }, data: { 'a.sql': 'SELECT 1;\n' } };
    const stringify = vi.spyOn(Yaml, 'stringify');
    const yaml = new ManifestYaml();
    const first = yaml.documents([structuredClone(shared), { kind: 'Namespace', metadata: { name: 'dev' } }]);
    const second = yaml.documents([structuredClone(shared), { kind: 'Namespace', metadata: { name: 'prod' } }]);
    expect(stringify).toHaveBeenCalledTimes(3);
    expect(first.split('---\n')[0]).toBe(second.split('---\n')[0]);
  });

  it('never mixes up values that JSON writes alike', () => {
    const yaml = new ManifestYaml();
    const docs = [{ a: null }, { a: undefined }, { n: 0 }, { n: -0 }, { n: null }, { n: Number.NaN }, { d: '1970-01-01T00:00:00.000Z' }, { d: new Date(0) }];
    for (const doc of docs) expect(yaml.documents([doc])).toBe(Yaml.stringify(doc));
  });
});

describe('plainJson', () => {
  it('is the JSON of plain data, and undefined for anything JSON would change', () => {
    expect(plainJson({ a: [1, 'x', true, null, { b: {} }] })).toBe('{"a":[1,"x",true,null,{"b":{}}]}');
    expect(plainJson(Object.assign(Object.create(null), { a: 1 }))).toBe('{"a":1}');
    for (const value of [{ a: undefined }, [undefined], { n: Number.POSITIVE_INFINITY }, { n: -0 }, { d: new Date(0) }, { f: () => 1 }, undefined]) {
      expect(plainJson(value)).toBeUndefined();
    }
  });
});
