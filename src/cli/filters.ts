// The --filter KEY=VALUE lists of Podman's ls commands (volume ls, secret ls): the values of one
// key are alternatives, different keys must all hold.

export type Predicate<T> = (x: T) => boolean;

/** One test for a filter list; `test` makes the test of one KEY=VALUE (and throws for a bad key). */
export function keyedFilter<T>(filters: readonly string[], test: (key: string, value: string) => Predicate<T>): Predicate<T> {
  const byKey = new Map<string, Predicate<T>[]>();
  for (const f of filters) {
    const i = f.indexOf('=');
    const key = i < 0 ? f : f.slice(0, i);
    byKey.set(key, [...(byKey.get(key) ?? []), test(key, i < 0 ? '' : f.slice(i + 1))]);
  }
  const groups = [...byKey.values()];
  return (x) => groups.every((ps) => ps.some((p) => p(x)));
}

/** label=KEY (present) or label=KEY=VALUE (present with that value). */
export function labelFilter(value: string): Predicate<Record<string, string>> {
  const j = value.indexOf('=');
  const [k, want] = j < 0 ? [value, undefined] : [value.slice(0, j), value.slice(j + 1)];
  return (labels) => Object.hasOwn(labels, k) && (want === undefined || labels[k] === want);
}
