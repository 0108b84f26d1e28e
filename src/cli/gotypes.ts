/**
 * The Go types behind Podman's and Buildah's `--format` data, as far as templates can tell them
 * apart from our JSON-shaped records: time.Time fields (printed as Go's String(), not as the
 * RFC 3339 text we store), nil maps and slices (`map[]`, `[]`), struct names for "can't evaluate
 * field" errors, and the reporter methods Podman's list commands compute columns with. Fields whose
 * Go name differs from the JSON key (ID for "Id") are declared so that both names work, as in Podman.
 */
import { GoTime } from '../image/gotime.ts';
import type { GoStructType, GoType } from './gotemplate.ts';

const strings: GoType = { slice: 'string' };
const labels: GoType = { map: 'string' };
const anyMap: GoType = { map: 'any' };
const anySlice: GoType = { slice: 'any' };

const struct = (name: string, fields: Record<string, GoType> = {}, methods?: GoStructType['methods']): GoStructType => ({
  struct: name,
  fields,
  ...(methods && { methods }),
});
const ptr = (t: GoType): GoType => ({ ptr: t });

// ---------------------------------------------------------------------------
// Image specs (github.com/opencontainers/image-spec and docker's schema2)

/** v1.History: `created` is a *time.Time, printed through its String() like a time.Time. */
const history = struct('v1.History', { Created: ptr('time'), CreatedBy: 'string', Author: 'string', Comment: 'string', EmptyLayer: 'bool' });

const imageConfig = struct('v1.ImageConfig', {
  User: 'string',
  ExposedPorts: anyMap,
  Env: strings,
  Entrypoint: strings,
  Cmd: strings,
  Volumes: anyMap,
  WorkingDir: 'string',
  Labels: labels,
  StopSignal: 'string',
  ArgsEscaped: 'bool',
});

const rootFS = (name: string): GoStructType => struct(name, { Type: 'string', DiffIDs: strings });

/** v1.Image, the OCI config that Buildah's inspect shows as OCIv1 (and skopeo inspect --config). */
const ociImage = struct('v1.Image', {
  Created: ptr('time'),
  Author: 'string',
  Architecture: 'string',
  Variant: 'string',
  OS: 'string',
  OSVersion: 'string',
  OSFeatures: strings,
  Config: imageConfig,
  RootFS: rootFS('v1.RootFS'),
  History: { slice: history },
});

/** docker.Config; the fields its JSON may leave out (omitempty) are listed with the rest. */
const dockerConfig = struct('docker.Config', {
  Env: strings,
  Cmd: strings,
  Entrypoint: strings,
  Labels: labels,
  Volumes: anyMap,
  ExposedPorts: anyMap,
  OnBuild: strings,
  Shell: strings,
  Healthcheck: 'any',
  ArgsEscaped: 'bool',
  NetworkDisabled: 'bool',
  MacAddress: 'string',
  StopSignal: 'string',
  StopTimeout: 'any',
});

/** docker.V2Image (with its embedded V1Image), Buildah's Docker view of the same config. */
const dockerImage = struct('docker.V2Image', {
  ID: 'string',
  Parent: 'string',
  Comment: 'string',
  Created: 'time',
  Container: 'string',
  ContainerConfig: dockerConfig,
  DockerVersion: 'string',
  Author: 'string',
  Config: ptr(dockerConfig),
  Architecture: 'string',
  Variant: 'string',
  OS: 'string',
  Size: 'int',
  RootFS: ptr(rootFS('docker.V2S2RootFS')),
  History: { slice: struct('docker.V2S2History', { Created: 'time', CreatedBy: 'string', Author: 'string', Comment: 'string', EmptyLayer: 'bool' }) },
  OSVersion: 'string',
  OSFeatures: strings,
});

export const OCI_IMAGE: GoType = ociImage;

/** skopeo inspect's inspect.Output (its JSON leaves out an empty Variant). */
export const SKOPEO_INSPECT: GoType = struct('inspect.Output', {
  Created: ptr('time'),
  Variant: 'string',
  RepoTags: strings,
  Labels: labels,
  Layers: strings,
  LayersData: anySlice,
  Env: strings,
});

/** `buildah inspect`'s buildah.BuilderInfo. */
export const BUILDER_INFO: GoType = struct('buildah.BuilderInfo', {
  OCIv1: ociImage,
  Docker: dockerImage,
  ImageAnnotations: labels,
  History: { slice: history },
  Devices: anySlice,
  NamespaceOptions: anySlice,
});

/** Podman's image inspect object (inspect.ImageData). */
export const IMAGE_DATA: GoType = struct('inspect.ImageData', {
  ID: 'string',
  RepoTags: strings,
  RepoDigests: strings,
  Created: ptr('time'),
  Config: ptr(imageConfig),
  RootFS: ptr(struct('inspect.RootFS', { Type: 'string', Layers: strings })),
  GraphDriver: ptr(struct('define.DriverData', { Name: 'string', Data: labels })),
  Labels: labels,
  Annotations: labels,
  History: { slice: history },
  NamesHistory: strings,
});

// ---------------------------------------------------------------------------
// Containers

const healthCheckResults = struct('define.HealthCheckResults', { Status: 'string', FailingStreak: 'int', Log: anySlice });

/** Podman's container inspect object (define.InspectContainerData). */
export const CONTAINER_DATA: GoType = struct('define.InspectContainerData', {
  ID: 'string',
  Created: 'time',
  Args: strings,
  State: ptr(
    struct('define.InspectContainerState', {
      OCIVersion: 'string',
      StartedAt: 'time',
      FinishedAt: 'time',
      Health: healthCheckResults,
      CheckpointedAt: 'time',
      RestoredAt: 'time',
    }),
  ),
  EffectiveCaps: strings,
  BoundingCaps: strings,
  ExecIDs: strings,
  GraphDriver: ptr(struct('define.DriverData', { Name: 'string', Data: labels })),
  Mounts: anySlice,
  Dependencies: strings,
  NetworkSettings: ptr(struct('define.InspectNetworkSettings', { Ports: anyMap, Networks: anyMap })),
  Config: ptr(
    struct('define.InspectContainerConfig', {
      Env: strings,
      Cmd: strings,
      Volumes: anyMap,
      OnBuild: 'any',
      Labels: labels,
      Annotations: labels,
      CreateCommand: strings,
      Secrets: anySlice,
      // Left out of the JSON when empty (omitempty).
      Healthcheck: 'any',
      HealthcheckOnFailureAction: 'string',
      Timezone: 'string',
      SystemdMode: 'bool',
      Passwd: 'any',
      ChrootDirs: strings,
      sdNotifyMode: 'string',
      sdNotifySocket: 'string',
    }),
  ),
  HostConfig: ptr(
    struct('define.InspectContainerHostConfig', {
      Binds: strings,
      LogConfig: ptr(struct('define.InspectLogConfig', { Config: labels })),
      PortBindings: anyMap,
      CapAdd: strings,
      CapDrop: strings,
      Dns: strings,
      DnsOptions: strings,
      DnsSearch: strings,
      ExtraHosts: strings,
      GroupAdd: strings,
      Links: strings,
      SecurityOpt: strings,
      Tmpfs: labels,
      VolumesFrom: strings,
      BlkioWeightDevice: anySlice,
      BlkioDeviceReadBps: anySlice,
      BlkioDeviceWriteBps: anySlice,
      BlkioDeviceReadIOps: anySlice,
      BlkioDeviceWriteIOps: anySlice,
      Devices: anySlice,
      Ulimits: anySlice,
      CgroupConf: labels,
      Init: 'bool',
    }),
  ),
});

// ---------------------------------------------------------------------------
// Podman's list reporters, whose methods shadow the summary's fields

/**
 * The RFC 3339 time at `key` as the String() of time.Unix of its seconds: Podman's summaries keep
 * seconds only, and its reporters' methods return the text (so `.CreatedAt.Unix` fails, as there).
 */
const unixTime = (self: Record<string, unknown>, key: string): string => {
  const v = self[key];
  return GoTime.unix(Math.floor(Date.parse(typeof v === 'string' ? v : '') / 1000) || 0).toString();
};

/** images' imageReporter. */
export const IMAGE_REPORTER: GoStructType = struct(
  'images.imageReporter',
  { Names: strings, RepoTags: strings, RepoDigests: strings, Labels: labels, Containers: 'int', SharedSize: 'int', ParentId: 'string' },
  {
    CreatedAt: (self) => unixTime(self, 'CreatedAtRaw'),
    CreatedTime: (self) => unixTime(self, 'CreatedAtRaw'),
    History: (self) => {
      const names = self['Names'];
      return Array.isArray(names) ? names.join(', ') : '';
    },
    IsReadOnly: (self) => self['ReadOnly'] === true,
  },
);

/** ps's psReporter (over entities.ListContainer, whose Created is a time.Time). */
export const PS_REPORTER: GoType = struct(
  'containers.psReporter',
  { Labels: labels, Mounts: strings, Exited: 'bool', ExitedAt: 'int', StartedAt: 'int', Pod: 'string', PodName: 'string' },
  {
    Created: (self) => GoTime.from(self['CreatedAt']),
    CreatedAt: (self) => GoTime.from(self['CreatedAt']).toString(),
    RunningFor: (self) => self['CreatedHuman'],
    Networks: (self) => (Array.isArray(self['Networks']) ? self['Networks'].join(',') : ''),
  },
);

/** history's historyReporter. */
export const HISTORY_REPORTER: GoType = struct(
  'images.historyReporter',
  { Tags: strings },
  { CreatedAt: (self) => unixTime(self, 'CreatedAt') },
);

// ---------------------------------------------------------------------------
// Secrets and volumes

const secretSpec = struct('entities.SecretSpec', {
  Labels: labels,
  Driver: struct('entities.SecretDriverSpec', { Name: 'string', Options: labels }),
});

/** Podman 4.3's events.Event, whose embedded Details brings PodID and Attributes. */
export const EVENT: GoType = ptr(struct('events.Event', { ContainerExitCode: 'int', PodID: 'string', HealthStatus: 'string', Attributes: labels }));

export const SECRET_INFO: GoType = ptr(struct('entities.SecretInfoReport', { CreatedAt: 'time', UpdatedAt: 'time', Spec: secretSpec }));
export const SECRET_LIST: GoType = ptr(struct('entities.SecretListReport'));

const volumeFields: Record<string, GoType> = {
  CreatedAt: 'time',
  Labels: labels,
  Options: labels,
  Status: anyMap,
  UID: 'int',
  GID: 'int',
  Anonymous: 'bool',
  MountCount: 'int',
  NeedsCopyUp: 'bool',
  NeedsChown: 'bool',
  Timeout: 'int',
};

export const VOLUME_INFO: GoType = ptr(struct('entities.VolumeConfigResponse', volumeFields));
export const VOLUME_LIST: GoType = ptr(struct('entities.VolumeListReport', volumeFields));

// ---------------------------------------------------------------------------
// Networks (github.com/containers/common/libnetwork/types)

const networkFields: Record<string, GoType> = {
  Name: 'string',
  ID: 'string',
  Driver: 'string',
  NetworkInterface: 'string',
  Created: 'time',
  Subnets: { slice: struct('types.Subnet', { Subnet: 'string', Gateway: 'string', LeaseRange: ptr(struct('types.LeaseRange', { StartIP: 'string', EndIP: 'string' })) }) },
  IPv6Enabled: 'bool',
  Internal: 'bool',
  DNSEnabled: 'bool',
  Labels: labels,
  Options: labels,
  IPAMOptions: labels,
};

export const NETWORK_INFO: GoType = struct('types.Network', networkFields);
/** `network ls`'s reporter: a short ID, and Labels as "k=v,…". */
export const NETWORK_LIST: GoType = struct('entities.ListPrintReports', networkFields, {
  ID: (self) => String(self.id ?? '').slice(0, 12),
  Labels: (self) => Object.entries((self.labels ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(','),
});
