// Podman's Kubernetes YAML commands, checked against Podman 4.3's behaviour: `kube play` (and
// `play kube`) of Pods, Deployments, PersistentVolumeClaims and ConfigMaps onto barge's pods and
// containers, `kube down`, and `generate kube` with its round trip. Rootless the pods' network is
// slirp4netns; as root it is Podman's podman-default-kube-network bridge (checked root-only).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOTLESS, type Env } from '../helpers.ts';
import { expectCode, freePort, podSuite, until } from './lib.ts';

// The kube network that a play as root makes goes too.
const suite = podSuite(async (e) => !ROOTLESS && e.barge(['network', 'rm', '-f', 'podman-default-kube-network']));
let env: Env;
beforeAll(() => {
  env = suite();
});

const claim = (name: string): string => `apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: ${name}\n---\n`;

const lines = (s: string): string[] => s.split('\n').filter((l) => l.trim() !== '');

function yamlFile(name: string, content: string): string {
  const f = join(env.tmp, name);
  writeFileSync(f, content);
  return f;
}

async function podNames(): Promise<string[]> {
  return lines(await env.bargeOk(['pod', 'ps', '--format', '{{.Name}}'])).sort();
}

/** CapEff of /proc/self/status as a number. */
const capEff = (status: string): bigint => BigInt(`0x${/^CapEff:\s*([0-9a-f]+)$/m.exec(status)![1]}`);
const CAP_CHOWN = 1n << 0n;
const CAP_NET_ADMIN = 1n << 12n;

describe('kube play of a Pod', () => {
  let port: number;
  let file: string;
  let hostDir: string;

  beforeAll(async () => {
    port = await freePort();
    hostDir = join(env.tmp, 'site');
    mkdirSync(hostDir, { recursive: true });
    writeFileSync(join(hostDir, 'index.html'), 'from-the-host\n');
    file = yamlFile('web.yaml', `apiVersion: v1
kind: Pod
metadata:
  name: kweb
  labels:
    app: kweb
  annotations:
    team: blue
spec:
  restartPolicy: OnFailure
  containers:
  - name: srv
    image: busybox
    command: [httpd]
    args: [-f, -p, "8080", -h, /site]
    workingDir: /tmp
    env:
    - name: GREETING
      value: hello
    ports:
    - containerPort: 8080
      hostPort: ${port}
      hostIP: 127.0.0.1
    volumeMounts:
    - name: site
      mountPath: /site
      readOnly: true
    - name: scratch
      mountPath: /scratch
    - name: data
      mountPath: /data
    securityContext:
      runAsUser: 1000
      runAsGroup: 1000
      capabilities:
        add: [NET_ADMIN]
        drop: [CHOWN]
  - name: side
    image: busybox
    args: [sleep, "600"]
    volumeMounts:
    - name: scratch
      mountPath: /shared
  volumes:
  - name: site
    hostPath:
      path: ${hostDir}
      type: Directory
  - name: scratch
    emptyDir: {}
  - name: data
    persistentVolumeClaim:
      claimName: kdata
# Fields barge does not use are passed over, as Podman passes them over.
  dnsPolicy: ClusterFirst
  terminationGracePeriodSeconds: 5
`);
  });

  it('creates the pod and its containers named POD-CONTAINER, starts them, and prints Podman\'s report', async () => {
    const out = await env.bargeOk(['kube', 'play', file]);
    const [podLine, podId, ctrLine, a, b, ...rest] = out.split('\n');
    expect([podLine, ctrLine, rest]).toEqual(['Pod:', 'Containers:', []]);
    expect(podId).toMatch(/^[0-9a-f]{64}$/);
    expect(await env.bargeOk(['pod', 'inspect', 'kweb', '--format', '{{.Id}} {{.State}} {{.Labels}} {{.Hostname}}'])).toBe(`${podId} Running map[app:kweb] kweb`);
    expect(await env.bargeOk(['inspect', 'kweb-srv', '--format', '{{.Id}} {{.Pod}} {{.State.Status}}'])).toBe(`${a} ${podId} running`);
    expect(await env.bargeOk(['inspect', 'kweb-side', '--format', '{{.Id}} {{.State.Status}}'])).toBe(`${b} running`);
    // The PVC's named volume, made for the pod.
    expect(lines(await env.bargeOk(['volume', 'ls', '--format', '{{.Name}}']))).toContain('kdata');
  });

  it('publishes the hostPort on the pod, and its containers share one network', async () => {
    let body = '';
    await until('the pod\'s httpd', async () => {
      body = await fetch(`http://127.0.0.1:${port}/index.html`).then((r) => r.text(), () => '');
      return body !== '';
    });
    expect(body).toBe('from-the-host\n');
    // The other container reaches the server on the pod's loopback.
    expect(await env.bargeOk(['exec', 'kweb-side', 'wget', '-q', '-O', '-', 'http://127.0.0.1:8080/index.html'])).toBe('from-the-host');
    expect(await env.bargeOk(['pod', 'inspect', 'kweb', '--format', '{{.InfraConfig.PortBindings}}'])).toBe(`map[8080/tcp:[map[HostIp:127.0.0.1 HostPort:${port}]]]`);
  });

  it.runIf(!ROOTLESS)('as root, puts the pod on Podman\'s podman-default-kube-network bridge', async () => {
    const infra = await env.bargeOk(['pod', 'inspect', 'kweb', '--format', '{{.InfraContainerID}}']);
    expect(await env.bargeOk(['inspect', infra, '--format', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}'])).toBe('podman-default-kube-network');
    expect(lines(await env.bargeOk(['network', 'ls', '--format', '{{.Name}}']))).toContain('podman-default-kube-network');
  });

  it('maps command/args, env, workingDir, labels, annotations and restartPolicy as Podman does', async () => {
    expect(await env.bargeOk(['inspect', 'kweb-srv', '--format', '{{.Config.Entrypoint}} {{json .Config.Cmd}} {{.Config.WorkingDir}} {{.HostConfig.RestartPolicy.Name}}']))
      .toBe('httpd ["-f","-p","8080","-h","/site"] /tmp on-failure');
    // args alone keep the image's entrypoint (none) and replace its CMD.
    expect(await env.bargeOk(['inspect', 'kweb-side', '--format', '{{json .Config.Cmd}}'])).toBe('["sleep","600"]');
    expect(await env.bargeOk(['exec', 'kweb-srv', 'sh', '-c', 'echo $GREETING; pwd'])).toBe('hello\n/tmp');
    expect(await env.bargeOk(['inspect', 'kweb-srv', '--format', '{{.Config.Labels.app}} {{index .Config.Annotations "team"}}'])).toBe('kweb blue');
  });

  it('applies the securityContext: runAsUser/runAsGroup and the capabilities added and dropped', async () => {
    expect(await env.bargeOk(['exec', 'kweb-srv', 'sh', '-c', 'id -u; id -g'])).toBe('1000\n1000');
    const caps = capEff(await env.bargeOk(['exec', 'kweb-srv', 'cat', '/proc/self/status']));
    expect(caps & CAP_NET_ADMIN).toBe(CAP_NET_ADMIN);
    expect(caps & CAP_CHOWN).toBe(0n);
    // The other container keeps the defaults (root, CAP_CHOWN, no CAP_NET_ADMIN).
    const side = capEff(await env.bargeOk(['exec', 'kweb-side', 'cat', '/proc/self/status']));
    expect([side & CAP_CHOWN, side & CAP_NET_ADMIN]).toEqual([CAP_CHOWN, 0n]);
  });

  it('mounts the hostPath read-only, one emptyDir shared by both containers, and the claim', async () => {
    expectCode(await env.barge(['exec', 'kweb-srv', 'sh', '-c', 'echo x > /site/new']), 1);
    await env.bargeOk(['exec', 'kweb-side', 'sh', '-c', 'echo shared > /shared/f']);
    expect(await env.bargeOk(['exec', 'kweb-srv', 'cat', '/scratch/f'])).toBe('shared');
    await env.bargeOk(['exec', '-u', '0', 'kweb-srv', 'sh', '-c', 'echo kept > /data/keep']);
  });

  it('refuses a second play of the same pod, and --replace tears it down and plays it again', async () => {
    const again = await env.barge(['kube', 'play', file]);
    expectCode(again, 125);
    expect(again.stderr).toContain('pod already exists');
    const old = await env.bargeOk(['pod', 'inspect', 'kweb', '--format', '{{.Id}}']);
    const out = await env.bargeOk(['kube', 'play', '--replace', '--start=false', file]);
    expect(out.startsWith(`Pods stopped:\n${old}\nPods removed:\n${old}\nPod:\n`)).toBe(true);
    expect(await env.bargeOk(['pod', 'inspect', 'kweb', '--format', '{{.State}}'])).toBe('Created');
  });

  it('kube down stops and removes the pod; the claim\'s volume and what it holds stay, the emptyDir goes', async () => {
    const id = await env.bargeOk(['pod', 'inspect', 'kweb', '--format', '{{.Id}}']);
    const volumesBefore = lines(await env.bargeOk(['volume', 'ls', '--format', '{{.Name}}']));
    expect(volumesBefore.length).toBe(2);
    expect(await env.bargeOk(['kube', 'down', file])).toBe(`Pods stopped:\n${id}\nPods removed:\n${id}`);
    expect(await podNames()).toEqual([]);
    expect(lines(await env.bargeOk(['volume', 'ls', '--format', '{{.Name}}']))).toEqual(['kdata']);
    expect(await env.bargeOk(['run', '--rm', '-v', 'kdata:/d', 'busybox', 'cat', '/d/keep'])).toBe('kept');
    const missing = await env.barge(['kube', 'down', file]);
    expectCode(missing, 125);
    expect(missing.stderr).toContain('no pod with name or ID kweb found: no such pod');
    await env.bargeOk(['volume', 'rm', 'kdata']);
  });
});

describe('kube play of other kinds', () => {
  it('plays a Deployment as one pod per replica (NAME-pod-N), with env from a ConfigMap and resource limits', async () => {
    const file = yamlFile('dep.yaml', `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  MODE: fast
  LEVEL: "3"
---
apiVersion: v1
kind: Service
metadata:
  name: ignored
spec:
  ports: [{port: 80}]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: kdep
spec:
  replicas: 2
  template:
    metadata:
      labels:
        app: kdep
    spec:
      containers:
      - name: app
        image: busybox
        imagePullPolicy: IfNotPresent
        command: [sleep, "600"]
        env:
        - name: CHOSEN
          valueFrom:
            configMapKeyRef: {name: settings, key: MODE}
        envFrom:
        - configMapRef: {name: settings}
        resources:
          limits: {memory: 64Mi, cpu: 500m}
        volumeMounts: [{name: conf, mountPath: /etc/conf}]
      volumes:
      - name: conf
        configMap:
          name: settings
          items: [{key: MODE, path: sub/mode.txt}]
`);
    const out = await env.bargeOk(['play', 'kube', '--build=false', file]);
    expect(out.split('\n').filter((l) => l === 'Pod:' || l === 'Container:')).toEqual(['Pod:', 'Container:', 'Pod:', 'Container:']);
    expect(await podNames()).toEqual(['kdep-pod-0', 'kdep-pod-1']);
    expectCode(await env.barge(['kube', 'play', '--build', file]), 125);
    expect(await env.bargeOk(['exec', 'kdep-pod-1-app', 'sh', '-c', 'echo $CHOSEN $MODE $LEVEL'])).toBe('fast fast 3');
    // The configMap volume holds the item asked for, at its path.
    expect(await env.bargeOk(['exec', 'kdep-pod-0-app', 'sh', '-c', 'ls -R /etc/conf; cat /etc/conf/sub/mode.txt'])).toBe('/etc/conf:\nsub\n\n/etc/conf/sub:\nmode.txt\nfast');
    expect(await env.bargeOk(['inspect', 'kdep-pod-0-app', '--format', '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}} {{.Config.Labels.app}}']))
      .toBe('67108864 500000000 always kdep');
    const down = await env.bargeOk(['kube', 'down', file]);
    expect(lines(down).filter((l) => /^[0-9a-f]{64}$/.test(l)).length).toBe(4);
    expect(await podNames()).toEqual([]);
    // Each pod's configMap volume went with it.
    expect(await env.bargeOk(['volume', 'ls', '-q'])).toBe('');
  });

  it('reads standard input: a PersistentVolumeClaim and a host-network pod whose init container runs once first', async () => {
    const yaml = `${claim('kclaim')}apiVersion: v1
kind: Pod
metadata:
  name: kinit
spec:
  restartPolicy: Never
  hostNetwork: true
  initContainers:
  - name: prepare
    image: busybox
    command: [sh, -c, "echo prepared > /work/state"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: main
    image: busybox
    command: [sleep, "600"]
    volumeMounts: [{name: work, mountPath: /work}]
  volumes:
  - name: work
    persistentVolumeClaim: {claimName: kclaim}
`;
    const out = await env.bargeOk(['kube', 'play', '-'], { input: yaml });
    expect(out).toMatch(/^Volumes:\nkclaim\nPod:\n[0-9a-f]{64}\nContainer:\n[0-9a-f]{64}$/);
    expect(await env.bargeOk(['exec', 'kinit-main', 'cat', '/work/state'])).toBe('prepared');
    // The init container is gone once it has run; the pod holds its infra container and main.
    expect(await env.bargeOk(['pod', 'inspect', 'kinit', '--format', '{{.NumContainers}}'])).toBe('2');
    expectCode(await env.barge(['container', 'exists', 'kinit-prepare']), 1);
    expect(await env.bargeOk(['inspect', 'kinit-main', '--format', '{{.HostConfig.NetworkMode}} {{.HostConfig.RestartPolicy.Name}}'])).toMatch(/^host( no)?$/);
    // The claim exists now: another play of it is refused, as Podman refuses it.
    await env.bargeOk(['kube', 'down', '-'], { input: yaml });
    const again = await env.barge(['kube', 'play', '-'], { input: yaml });
    expectCode(again, 125);
    expect(again.stderr).toContain('volume with name kclaim already exists: volume already exists');
    expect(await podNames()).toEqual([]);
    await env.bargeOk(['volume', 'rm', 'kclaim']);
  });
});

describe('env from secrets', () => {
  it('takes secretKeyRef and secretRef values from a Podman secret that holds a Kubernetes Secret, and refuses a missing one', async () => {
    const secret = yamlFile('secret.yaml', `apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\ndata:\n  password: ${Buffer.from('s3cret').toString('base64')}\nstringData:\n  user: admin\n`);
    await env.bargeOk(['secret', 'create', 'creds', secret]);
    const pod = (ref: string): string => `apiVersion: v1
kind: Pod
metadata:
  name: ksec
spec:
  containers:
  - name: app
    image: busybox
    command: [sleep, "600"]
    env:
    - name: PASSWORD
      valueFrom:
        secretKeyRef: {name: ${ref}, key: password}
    envFrom:
    - secretRef: {name: ${ref}}
      prefix: S_
`;
    await env.bargeOk(['kube', 'play', '--start=false', '-'], { input: pod('creds') });
    await env.bargeOk(['pod', 'start', 'ksec']);
    expect(await env.bargeOk(['exec', 'ksec-app', 'sh', '-c', 'echo $PASSWORD $S_user $S_password'])).toBe('s3cret admin s3cret');
    await env.bargeOk(['pod', 'rm', '-f', '-t', '0', 'ksec']);
    const missing = await env.barge(['kube', 'play', '-'], { input: pod('nocreds') });
    expectCode(missing, 125);
    expect(missing.stderr).toContain('secret nocreds not found');
    expect(await podNames()).toEqual([]);
    await env.bargeOk(['secret', 'rm', 'creds']);
  });
});

describe('kube play of bad input', () => {
  const pod = (volumes: string, extra = ''): string => `apiVersion: v1
kind: Pod
metadata:
  name: kbad
spec:
  containers:
  - name: a
    image: busybox
    command: [sleep, "600"]
    volumeMounts: [{name: v, mountPath: /v}]
${extra}  volumes:
${volumes}`;

  it('refuses with Podman\'s messages and exit 125, leaving nothing behind', async () => {
    const cases: [string, string][] = [
      ['apiVersion: v1\nkind: Pod\nmetadata:\n  name: [\n', 'multi doc yaml could not be split'],
      ['apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n', 'YAML document does not contain any supported kube kind'],
      [pod('  - name: v\n    nfs: {server: x, path: /y}\n'), 'failed to create volume "v": HostPath, ConfigMap, EmptyDir, and PersistentVolumeClaim are currently the only supported VolumeSource'],
      [pod(`  - name: v\n    hostPath: {path: ${env.tmp}/none, type: Directory}\n`), `failed to create volume "v": in parsing HostPath in YAML: stat ${env.tmp}/none: no such file or directory`],
      [pod('  - name: other\n    emptyDir: {}\n'), 'volume mount v specified for container but not configured in volumes'],
      [pod('  - name: v\n    emptyDir: {}\n').replace('image: busybox', 'image: localhost/no-such-image:1\n    imagePullPolicy: Never'), 'no-such-image'],
    ];
    for (const [yaml, message] of cases) {
      const r = await env.barge(['kube', 'play', '-'], { input: yaml });
      expectCode(r, 125);
      expect(r.stderr).toContain(message);
    }
    expect(await podNames()).toEqual([]);
    expect(await env.bargeOk(['ps', '-aq'])).toBe('');
    expect(await env.bargeOk(['volume', 'ls', '-q'])).toBe('');
  });

  it('removes what it made when a later pod fails midway', async () => {
    const yaml = `${claim('kmid')}${pod('  - name: v\n    emptyDir: {}\n').replace('kbad', 'kfirst')}---
${pod('  - name: v\n    emptyDir: {}\n').replace('command: [sleep, "600"]', 'command: [sleep, "600"]\n    securityContext:\n      capabilities: {add: [BOGUS]}')}`;
    const r = await env.barge(['kube', 'play', '-'], { input: yaml });
    expectCode(r, 125);
    expect(r.stderr).toContain('"CAP_BOGUS": unknown capability');
    expect(await podNames()).toEqual([]);
    expect(await env.bargeOk(['ps', '-aq'])).toBe('');
    expect(await env.bargeOk(['volume', 'ls', '-q'])).toBe('');
    expect(await env.bargeOk(['system', 'check'])).toBe('No problems found');
  });
});

describe('generate kube', () => {
  it('writes a container as Podman\'s Pod YAML, with -s a Service of NodePorts, and -f to a file', async () => {
    const port = await freePort();
    const dir = join(env.tmp, 'gen');
    mkdirSync(dir, { recursive: true });
    await env.bargeOk(['create', '--name', 'kgen', '-e', 'ONLY=here', '-p', `${port}:80`, '-v', 'kgenvol:/n', '-v', `${dir}:/h:ro`, '-w', '/tmp', '-u', '10:20',
      '--cap-add', 'NET_ADMIN', '--memory', '64m', 'busybox', 'sleep', '300']);
    const yaml = await env.bargeOk(['generate', 'kube', 'kgen']);
    expect(yaml.startsWith('# Save the output of this file and use kubectl create -f to import\n# it into Kubernetes.\n#\n# Created with barge-')).toBe(true);
    const doc = yaml.slice(yaml.indexOf('apiVersion:'));
    expect(doc).toContain(`apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: "`);
    expect(doc).toContain(`  labels:
    app: kgen-pod
  name: kgen-pod
spec:
  automountServiceAccountToken: false
  containers:
  - command:
    - sleep
    - "300"
    env:
    - name: ONLY
      value: here
    image: localhost/busybox:latest
    name: kgen
    ports:
    - containerPort: 80
      hostPort: ${port}
    resources:
      limits:
        memory: 64Mi
    securityContext:
      capabilities:
        add:
        - CAP_NET_ADMIN
        drop:
        - CAP_MKNOD
        - CAP_NET_RAW
        - CAP_AUDIT_WRITE
      runAsGroup: 20
      runAsUser: 10
    volumeMounts:
    - mountPath: /h
      name: ${dir.replace(/\//g, '-').slice(1)}-host-0
      readOnly: true
    - mountPath: /n
      name: kgenvol-pvc
    workingDir: /tmp
  enableServiceLinks: false
  volumes:
  - hostPath:
      path: ${dir}
      type: Directory
    name: ${dir.replace(/\//g, '-').slice(1)}-host-0
  - name: kgenvol-pvc
    persistentVolumeClaim:
      claimName: kgenvol`);
    const withService = await env.bargeOk(['generate', 'kube', '-s', 'kgen']);
    expect(withService).toMatch(/kind: Service\nmetadata:\n {2}creationTimestamp: "[^"]+"\n {2}labels:\n {4}app: kgen-pod\n {2}name: kgen-pod\nspec:\n {2}ports:\n {2}- name: "80"\n {4}nodePort: (\d+)\n {4}port: 80\n {4}targetPort: 80\n {2}selector:\n {4}app: kgen-pod\n {2}type: NodePort\n---\napiVersion: v1\nkind: Pod\n/);
    const nodePort = Number(/nodePort: (\d+)/.exec(withService)![1]);
    expect(nodePort >= 30000 && nodePort <= 32767).toBe(true);
    const out = join(env.tmp, 'kgen.yaml');
    expect(await env.bargeOk(['generate', 'kube', '-f', out, 'kgen'])).toBe('');
    const exists = await env.barge(['generate', 'kube', '-f', out, 'kgen']);
    expectCode(exists, 125);
    expect(exists.stderr).toContain(`cannot write to "${out}"; file exists`);
    const missing = await env.barge(['kube', 'generate', 'no-such-thing']);
    expectCode(missing, 125);
    expect(missing.stderr).toContain('name or ID "no-such-thing" not found');
    await env.bargeOk(['rm', 'kgen']);
    await env.bargeOk(['volume', 'rm', 'kgenvol']);
  });

  it('round trip: a played pod, generated and played again, is an equivalent pod', async () => {
    const hostDir = join(env.tmp, 'rt');
    mkdirSync(hostDir, { recursive: true });
    writeFileSync(join(hostDir, 'f'), 'host-file\n');
    const original = yamlFile('rt.yaml', `apiVersion: v1
kind: Pod
metadata:
  name: krt
  labels: {tier: back}
spec:
  restartPolicy: OnFailure
  containers:
  - name: app
    image: busybox
    command: [sh, -c]
    args: ["echo $WHO > /scratch/who; exec sleep 600"]
    env: [{name: WHO, value: round-trip}]
    workingDir: /scratch
    securityContext:
      runAsUser: 0
      capabilities: {add: [NET_ADMIN]}
    volumeMounts:
    - {name: host, mountPath: /host, readOnly: true}
    - {name: scratch, mountPath: /scratch}
  volumes:
  - name: host
    hostPath: {path: ${hostDir}, type: Directory}
  - name: scratch
    emptyDir: {}
`);
    await env.bargeOk(['kube', 'play', original]);
    const generated = yamlFile('rt-generated.yaml', await env.bargeOk(['generate', 'kube', 'krt']));
    expect(await env.bargeOk(['kube', 'down', original])).toContain('Pods removed:');
    const out = await env.bargeOk(['kube', 'play', generated]);
    expect(out).toMatch(/^Pod:\n[0-9a-f]{64}\nContainer:\n[0-9a-f]{64}$/);
    // Podman 4.3 writes the containers under their full names, which a play prefixes with the pod's again.
    const ctr = 'krt-krt-app';
    await until('the replayed container to write its file', async () => (await env.barge(['exec', ctr, 'cat', '/scratch/who'])).stdout === 'round-trip\n');
    expect(await env.bargeOk(['exec', ctr, 'sh', '-c', 'pwd; cat /host/f; echo x > /host/g || echo read-only'])).toContain('/scratch\nhost-file');
    expect(await env.bargeOk(['exec', ctr, 'sh', '-c', 'echo x > /host/g 2>/dev/null || echo read-only'])).toBe('read-only');
    expect(capEff(await env.bargeOk(['exec', ctr, 'cat', '/proc/self/status'])) & CAP_NET_ADMIN).toBe(CAP_NET_ADMIN);
    expect(await env.bargeOk(['pod', 'inspect', 'krt', '--format', '{{.Labels}}'])).toBe('map[tier:back]');
    expect(await env.bargeOk(['inspect', ctr, '--format', '{{.Config.Entrypoint}} {{.HostConfig.RestartPolicy.Name}}'])).toBe('sh -c on-failure');
    await env.bargeOk(['kube', 'down', generated]);
    expect(await podNames()).toEqual([]);
    // The emptyDir, played back as one, went with the pod.
    expect(await env.bargeOk(['volume', 'ls', '-q'])).toBe('');
  });
});
