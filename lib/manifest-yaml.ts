import { Yaml } from 'cdk8s';

/**
 * Multi-document YAML exactly as cdk8s's Yaml.stringify writes it, remembering each manifest's
 * text by its JSON: YAML is most of a synth's time, and both profiles render the same
 * migration ConfigMaps. A manifest with anything JSON cannot tell apart (undefined, NaN,
 * -0, class instances) is written without the cache.
 */
export class ManifestYaml {
  private readonly texts = new Map<string, string>();

  documents(docs: readonly unknown[]): string {
    return docs.map((doc) => this.document(doc)).join('---\n');
  }

  private document(doc: unknown): string {
    const key = plainJson(doc);
    let text = key === undefined ? undefined : this.texts.get(key);
    if (text === undefined) {
      text = Yaml.stringify(doc);
      if (key !== undefined) this.texts.set(key, text);
    }
    return text;
  }
}

/** `value` as JSON when JSON represents it exactly (plain objects, arrays, strings, finite numbers, booleans, null). */
export function plainJson(value: unknown): string | undefined {
  let exact = true;
  const json = JSON.stringify(value, function (this: Record<string, unknown>, key: string, converted: unknown) {
    const raw = this[key]; // before toJSON(); the root arrives as {'': value}
    if (typeof raw === 'number') {
      if (!Number.isFinite(raw) || Object.is(raw, -0)) exact = false;
    } else if (typeof raw === 'object' && raw !== null) {
      const prototype = Object.getPrototypeOf(raw);
      if (!Array.isArray(raw) && prototype !== Object.prototype && prototype !== null) exact = false;
    } else if (typeof raw !== 'string' && typeof raw !== 'boolean' && raw !== null) {
      exact = false;
    }
    return converted;
  });
  return exact ? json : undefined;
}
