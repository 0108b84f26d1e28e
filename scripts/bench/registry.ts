// Debian's docker-registry (distribution 2.8) on 127.0.0.1, plain HTTP, temp storage.
// Runs directly under Node 24 (type stripping): erasable TypeScript only, no imports from src/.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, sleep } from './lib.ts';

export interface Registry {
  /** HOST:PORT */
  host: string;
  stop: () => Promise<void>;
}

// The registry runs under a small sh watchdog that kills it (by its pid) as soon as our end of
// the watchdog's stdin closes: when stop() closes it, and also when the bench dies without a
// chance to clean up (SIGKILL, crash), so no registry outlives the run. The first line on
// stdout is the registry's pid. (fd 3: sh gives background jobs /dev/null as stdin.)
const WATCHDOG = `
docker-registry serve "$1" >"$2" 2>&1 &
p=$!
echo "$p"
exec 3<&0
{ cat <&3 >/dev/null; kill "$p" 2>/dev/null; } &
wait "$p"
`;

/** Whether p settled within ms; the timer is cleared, so it never holds the process open. */
async function within(p: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<boolean>((res) => (timer = setTimeout(() => res(false), ms)));
  try {
    return await Promise.race([p.then(() => true), t]);
  } finally {
    clearTimeout(timer);
  }
}

async function startOnce(dir: string, port: number): Promise<Registry> {
  const host = `127.0.0.1:${port}`;
  const config = join(dir, 'config.yml');
  const logFile = join(dir, 'registry.log');
  writeFileSync(
    config,
    `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ${join(dir, 'data')}
  delete:
    enabled: true
http:
  addr: ${host}
`,
  );
  const child: ChildProcess = spawn('sh', ['-c', WATCHDOG, 'registry-watchdog', config, logFile], { stdio: ['pipe', 'pipe', 'ignore'] });
  let exited = false;
  const exitP = new Promise<void>((res) => child.on('exit', () => ((exited = true), res())));
  let pid = 0;
  child.stdout!.once('data', (b: Buffer) => {
    pid = Number(b.toString().trim().split('\n')[0]);
  });

  const stop = async (): Promise<void> => {
    if (exited) return;
    child.stdin!.end();
    const done = await within(exitP, 10_000);
    if (!done && pid > 0) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      await within(exitP, 5_000);
    }
  };

  // Up when /v2/ answers (200, or 401 with auth); give it 20 s.
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && !exited) {
    try {
      const r = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(2_000) });
      if (r.status === 200 || r.status === 401) return { host, stop };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await stop();
  const log = existsSync(logFile) ? readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
  throw new Error(`docker-registry on ${host} did not come up${exited ? ' (it exited)' : ''}${log ? `: ${log}` : ''}`);
}

/** Starts a registry on a free loopback port; a port lost to a race is retried twice. */
export async function startRegistry(dir: string): Promise<Registry> {
  mkdirSync(join(dir, 'data'), { recursive: true });
  let last: Error | null = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(dir, await freePort());
    } catch (e) {
      last = e as Error;
    }
  }
  throw last!;
}
