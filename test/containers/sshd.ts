// A private sshd on 127.0.0.1 for `container migrate ssh://…`: its own host key, one authorized
// client key, and a session PATH that finds this checkout's bin/barge as "barge", as an installed
// barge would be found on a real destination host.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers.ts';
import { freePort } from '../registry/registry.ts';

export interface Sshd {
  port: number;
  /** A client for BARGE_SSH: ssh with the authorized key, no host key prompts. */
  client: string;
  stop(): Promise<void>;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ host: '127.0.0.1', port }, () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export async function startSshd(): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'barge-sshd-'));
  for (const k of ['host', 'client']) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, k)]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client.pub')));
  const port = await freePort();
  const path = [join(REPO_ROOT, 'bin'), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'].join(':');
  writeFileSync(join(dir, 'sshd_config'), [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${join(dir, 'host')}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `PidFile ${join(dir, 'sshd.pid')}`, 'PermitRootLogin prohibit-password', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', `SetEnv PATH=${path}`, '',
  ].join('\n'));
  // Privilege separation directory, which sshd insists on.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const client = join(dir, 'ssh');
  writeFileSync(client, `#!/bin/sh\nexec ssh -F none -i ${join(dir, 'client')} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "$@"\n`);
  chmodSync(client, 0o755);
  const sshd: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  sshd.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  const deadline = Date.now() + 10_000;
  while (!(await accepts(port))) {
    if (sshd.exitCode !== null || Date.now() > deadline) throw new Error(`sshd did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    client,
    stop: async () => {
      if (sshd.exitCode === null) {
        sshd.kill('SIGTERM');
        await new Promise((r) => sshd.once('exit', r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
