// `barge build` and the same steps written as a shell script of primitives give the same config
// and the same files. As in Buildah, `build` gives a stage whose base sets no PATH the default
// one and `from` does not, so the script sets it: that is the one step FROM adds.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Env } from '../helpers.ts';
import { busyboxEnv } from '../fixtures.ts';
import { buildOk, context, DEFAULT_PATH, imageConfig, runIn } from './lib.ts';

let env: Env;
beforeAll(async () => {
  ({ env } = await busyboxEnv());
});
afterAll(async () => {
  await env?.cleanup();
});

const LISTING = 'find / -xdev \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -print | sort; find /app -type f | sort | xargs md5sum; stat -c "%n %a %u:%g" /app /app/*';

describe('build ≡ script of primitives', () => {
  for (const layers of [false, true]) {
    it(`same config and files${layers ? ' (--layers)' : ''}`, async () => {
      const ctx = await context(env, {
        Containerfile: [
          'FROM busybox',
          'ENV A=1 B=two',
          'LABEL l=v',
          'WORKDIR /app',
          'COPY a.txt ./',
          'COPY conf/ /app/conf/',
          'RUN echo built > /app/built',
          'USER nobody',
          'EXPOSE 8080',
          'VOLUME /data',
          'STOPSIGNAL SIGQUIT',
          'ENTRYPOINT ["/bin/sh"]',
          'CMD ["-c", "cat /app/built"]',
        ].join('\n'),
        'a.txt': 'alpha\n',
        'conf/x.conf': 'x=1\n',
      });
      await buildOk(env, ctx, [...(layers ? ['--layers'] : []), '-t', `built-${layers}`]);

      const ctr = await env.bargeOk(['from', 'busybox']);
      await env.bargeOk(['config', '--env', DEFAULT_PATH, '--env', 'A=1', '--env', 'B=two', '--label', 'l=v', '--workingdir', '/app', ctr]);
      await env.bargeOk(['copy', ctr, 'a.txt', './'], { cwd: ctx });
      await env.bargeOk(['copy', ctr, 'conf/', '/app/conf/'], { cwd: ctx });
      await env.bargeOk(['run', ctr, '--', '/bin/sh', '-c', 'echo built > /app/built']);
      // EXPOSE 8080 means 8080/tcp; buildah config --port keeps what it is given.
      await env.bargeOk(['config', '--user', 'nobody', '--port', '8080/tcp', '--volume', '/data', '--stop-signal', 'SIGQUIT', '--entrypoint', '["/bin/sh"]', ctr]);
      await env.bargeOk(['config', '--cmd', '["-c", "cat /app/built"]', ctr]);
      await env.bargeOk(['commit', '--rm', ctr, `scripted-${layers}`]);

      expect(await imageConfig(env, `built-${layers}`)).toEqual(await imageConfig(env, `scripted-${layers}`));
      const a = await runIn(env, `built-${layers}`, LISTING);
      const b = await runIn(env, `scripted-${layers}`, LISTING);
      expect(a).toBe(b);
      expect(a).toContain('/app/conf/x.conf');
    });
  }

  it('both run the same under the runtime', async () => {
    const ctx = await context(env, { Containerfile: 'FROM busybox\nRUN echo hi > /hi\nCMD ["cat", "/hi"]\n' });
    await writeFile(join(ctx, 'unused'), '');
    await buildOk(env, ctx, ['-t', 'runnable']);
    expect(await runIn(env, 'runnable', 'cat /hi')).toBe('hi');
  });
});
