// Podman's `secret` commands: create, ls, inspect, rm, exists (file driver only).

import { readFile } from 'node:fs/promises';
import { openStore, print, ExitError, humanAgo, type GlobalOptions } from '../context.ts';
import type { Store } from '../../store/store.ts';
import { createSecret, findSecret, listSecrets, readSecretData, removeSecret, secretsDir, SecretError, type SecretMeta } from '../../containers/secrets.ts';
import { setKeyValues } from '../../primitives/config.ts';
import { goJSON, withGoJSONTimes } from '../gotemplate.ts';
import { GoTime } from '../../image/gotime.ts';
import { SECRET_INFO, SECRET_LIST } from '../gotypes.ts';
import { keyedFilter, labelFilter, type Predicate } from '../filters.ts';

type Opts = Record<string, unknown>;
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const list = (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : []);

function exitError(e: unknown): ExitError {
  return new ExitError((e as Error).message, e instanceof SecretError ? e.exitCode : 125);
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The content `secret create` stores: a file, stdin ("-"), or with --env a variable of barge's environment. */
async function secretInput(source: string, fromEnv: boolean): Promise<Buffer> {
  if (fromEnv) {
    const v = process.env[source];
    if (v === undefined) throw new ExitError(`cannot create store secret data: environment variable ${source} is not set`, 125);
    return Buffer.from(v);
  }
  if (source === '-') return readStdin();
  try {
    return await readFile(source);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ExitError(`open ${source}: ${code === 'ENOENT' ? 'no such file or directory' : code === 'EISDIR' ? 'is a directory' : (e as Error).message}`, 125);
  }
}

/** `secret create [--driver file] [--env] [--label K=V] [--replace] NAME FILE|-`: prints the id. */
export async function secretCreateCmd(g: GlobalOptions, args: string[], o: Opts): Promise<void> {
  const [name = '', source = ''] = args;
  const driver = str(o.driver) ?? 'file';
  if (driver !== 'file') throw new ExitError(`secret driver "${driver}": barge has only the file driver`, 125);
  const data = await secretInput(source, !!o.env);
  const store = await openStore(g);
  try {
    print((await createSecret(store, name, data, { labels: setKeyValues({}, list(o.label)), replace: !!o.replace })).id);
  } catch (e) {
    throw exitError(e);
  }
}

/** --filter as Podman's: name and id are regular expressions (newer Podman's label=KEY[=VALUE] too). */
function secretFilter(filters: readonly string[]): Predicate<SecretMeta> {
  return keyedFilter<SecretMeta>(filters, (key, value) => {
    if (key === 'name' || key === 'id') {
      const re = new RegExp(value);
      return (s) => re.test(key === 'name' ? s.name : s.id);
    }
    if (key === 'label') {
      const has = labelFilter(value);
      return (s) => has(s.labels);
    }
    throw new ExitError(`invalid filter "${key}"`, 125);
  });
}

/** `secret ls [--format] [--filter] [--noheading] [-q]`, oldest first. */
export async function secretLsCmd(g: GlobalOptions, _args: string[], o: Opts): Promise<void> {
  const store = await openStore(g);
  const secrets = listSecrets(store).filter(secretFilter(list(o.filter)));
  if (o.quiet) {
    for (const s of secrets) print(s.id);
    return;
  }
  const format = str(o.format);
  const { formatRows, isTableFormat } = await import('../table.ts');
  const rows = secrets.map((s) => ({ ID: s.id, Name: s.name, Driver: s.driver, CreatedAt: humanAgo(s.createdAt), UpdatedAt: humanAgo(s.updatedAt) }));
  const out = formatRows(rows, {
    ...(format !== undefined && { format }),
    defaultTable: 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.CreatedAt}}\t{{.UpdatedAt}}',
    headers: { CreatedAt: 'CREATED', UpdatedAt: 'UPDATED' },
    name: 'ls',
    type: SECRET_LIST,
  });
  process.stdout.write(o.noheading && isTableFormat(format) ? out.split('\n').slice(1).join('\n') : out);
}

/** Podman's inspect object of a secret; the content only when asked for. */
async function secretJSON(store: Store, s: SecretMeta, showSecret: boolean): Promise<Record<string, unknown>> {
  return {
    ID: s.id,
    CreatedAt: s.createdAt,
    UpdatedAt: s.updatedAt,
    Spec: { Name: s.name, Driver: { Name: s.driver, Options: { path: `${secretsDir(store)}/filedriver` } }, Labels: s.labels },
    ...(showSecret && { SecretData: (await readSecretData(store, s)).toString('utf8') }),
  };
}

/** `secret inspect --pretty`, laid out as Podman 4.3's. */
function pretty(s: SecretMeta, data: string | undefined): string {
  const labels = Object.entries(s.labels).map(([k, v]) => ` - ${v === '' ? k : `${k}=${v}`}\n`).join('');
  return `ID:              ${s.id}\nName:              ${s.name}\nLabels:\n${labels}Driver:            ${s.driver}\n`
    + `Created at:        ${GoTime.from(s.createdAt)}\nUpdated at:        ${GoTime.from(s.updatedAt)}\n${data === undefined ? '' : `Secret data:       ${data}\n`}`;
}

/** `secret inspect [--format|--pretty] [--showsecret] NAME…`: the found ones are printed, a missing one makes it fail with 125. */
export async function secretInspectCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  if (args.length === 0) throw new ExitError('requires at least 1 arg(s), only received 0', 125);
  const store = await openStore(g);
  const found: SecretMeta[] = [];
  let failed = 0;
  for (const ref of args) {
    try {
      found.push(findSecret(store, ref));
    } catch (e) {
      process.stderr.write(`Error: inspecting secret: ${(e as Error).message}\n`);
      failed = 125;
    }
  }
  const show = !!o.showsecret;
  if (o.pretty) {
    const texts = await Promise.all(found.map(async (s) => pretty(s, show ? (await readSecretData(store, s)).toString('utf8') : undefined)));
    process.stdout.write(texts.join('\n'));
    return failed;
  }
  const objects = await Promise.all(found.map((s) => secretJSON(store, s, show)));
  const format = str(o.format);
  // Podman runs the template over each report itself, not as inspect's interface{} elements.
  if (format !== undefined && format !== 'json') process.stdout.write((await import('../table.ts')).formatRows(objects, { format, defaultTable: format, name: 'inspect', type: SECRET_INFO }));
  else print(goJSON(objects.map((s) => withGoJSONTimes(s, SECRET_INFO)), 4));
  return failed;
}

/** `secret rm [-a] [-i] NAME…`: prints each id removed; one that does not exist fails it (125) unless --ignore. */
export async function secretRmCmd(g: GlobalOptions, args: string[], o: Opts): Promise<number> {
  if ((args.length > 0) === !!o.all) throw new ExitError('`secret rm` requires one argument, or the --all flag', 125);
  const store = await openStore(g);
  let code = 0;
  for (const ref of o.all ? listSecrets(store).map((s) => s.id) : args) {
    try {
      print(await removeSecret(store, ref));
    } catch (e) {
      if (o.ignore && e instanceof SecretError && e.message.endsWith('no such secret')) continue;
      process.stderr.write(`Error: ${(e as Error).message}\n`);
      code = 125;
    }
  }
  return code;
}

/** `secret exists NAME`: 0 when it exists, 1 when not. */
export async function secretExistsCmd(g: GlobalOptions, args: string[]): Promise<number> {
  const store = await openStore(g);
  try {
    findSecret(store, args[0] ?? '');
    return 0;
  } catch (e) {
    if (e instanceof SecretError) return 1;
    throw e;
  }
}
