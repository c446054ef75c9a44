// Reads the app's CDK context (`-c key=value` on the command line, or the
// "context" object of cdk.json) into typed, validated settings. Values given
// with -c arrive as strings, values from cdk.json keep their JSON types, so
// every reader accepts both. A bad value stops synthesis with an error that
// names the key, before anything reaches CloudFormation.

/** Where the settings come from: a construct's node, or a plain map in tests. */
export interface ContextSource {
  tryGetContext(key: string): unknown;
}

export interface Settings {
  /** Existing VPC to deploy into (looked up at synth time); undefined: create one. */
  vpcId?: string;
  /** NAT gateways of a created VPC (1 is cheapest; 2 survives the loss of an AZ; never 0: tasks pull images and secrets through NAT). */
  natGateways: number;
  /** Tasks to run, and the floor of autoscaling. */
  desiredCount: number;
  /** Ceiling of autoscaling. */
  maxCount: number;
  /** Fargate task size: CPU units (1024 = 1 vCPU) and memory in MiB. */
  cpu: number;
  memoryMiB: number;
  /** A registry image (e.g. ghcr.io/me/eddy:1.2.3); undefined: build deploy/Dockerfile. */
  image?: string;
  /** HTTPS: the domain clients use, its ACM certificate, the Route 53 zone. */
  domainName?: string;
  certificateArn?: string;
  hostedZoneId?: string;
  hostedZoneName?: string;
  /** ElastiCache node type of the primary and of the replica. */
  redisNodeType: string;
  /** Eddy's shutdown_timeout in seconds; the load balancer and ECS are matched to it. */
  shutdownTimeoutSeconds: number;
  /** Eddy's ping_interval in seconds; the load balancer's idle timeout stays above it. */
  pingIntervalSeconds: number;
  /** ALB idle timeout in seconds. */
  idleTimeoutSeconds: number;
  /** Target CPU utilization (percent) of CPU autoscaling. */
  cpuTargetPercent: number;
  /** WebSocket connections per task above which the service scales out. */
  connectionsPerTask: number;
  /** EDDY_ALLOWED_ORIGINS: Origin patterns allowed to open WebSockets (empty: any). */
  allowedOrigins?: string;
  /** Days CloudWatch keeps the tasks' logs. */
  logRetentionDays: number;
}

/** Fargate's valid CPU/memory pairs (CPU units to the memory sizes in MiB allowed). */
const FARGATE_SIZES: Record<number, (mem: number) => boolean> = {
  256: (m) => [512, 1024, 2048].includes(m),
  512: (m) => m >= 1024 && m <= 4096 && m % 1024 === 0,
  1024: (m) => m >= 2048 && m <= 8192 && m % 1024 === 0,
  2048: (m) => m >= 4096 && m <= 16384 && m % 1024 === 0,
  4096: (m) => m >= 8192 && m <= 30720 && m % 1024 === 0,
  8192: (m) => m >= 16384 && m <= 61440 && m % 4096 === 0,
  16384: (m) => m >= 32768 && m <= 122880 && m % 8192 === 0,
};

export function readSettings(src: ContextSource): Settings {
  const s: Settings = {
    vpcId: str(src, 'vpcId'),
    natGateways: int(src, 'natGateways', 1, 1, 3),
    desiredCount: int(src, 'desiredCount', 2, 1, 1000),
    maxCount: int(src, 'maxCount', 10, 1, 1000),
    cpu: int(src, 'cpu', 512, 256, 16384),
    memoryMiB: int(src, 'memory', 1024, 512, 122880),
    image: str(src, 'image'),
    domainName: str(src, 'domainName'),
    certificateArn: str(src, 'certificateArn'),
    hostedZoneId: str(src, 'hostedZoneId'),
    hostedZoneName: str(src, 'hostedZoneName'),
    redisNodeType: str(src, 'redisNodeType') ?? 'cache.t4g.small',
    shutdownTimeoutSeconds: int(src, 'shutdownTimeout', 10, 1, 100),
    pingIntervalSeconds: int(src, 'pingInterval', 25, 1, 3600),
    idleTimeoutSeconds: int(src, 'idleTimeout', 120, 1, 4000),
    cpuTargetPercent: int(src, 'cpuTargetPercent', 60, 10, 95),
    connectionsPerTask: int(src, 'connectionsPerTask', 5000, 10, 1000000),
    allowedOrigins: str(src, 'allowedOrigins'),
    logRetentionDays: int(src, 'logRetentionDays', 30, 1, 3653),
  };
  if (s.vpcId !== undefined && !/^vpc-[0-9a-f]{8,17}$/.test(s.vpcId)) {
    throw new Error(`context vpcId: ${JSON.stringify(s.vpcId)} is not a VPC id (vpc-0123abcd...)`);
  }
  if (s.maxCount < s.desiredCount) {
    throw new Error(`context maxCount (${s.maxCount}) must be at least desiredCount (${s.desiredCount})`);
  }
  const memOK = FARGATE_SIZES[s.cpu];
  if (!memOK) {
    throw new Error(`context cpu: ${s.cpu} is not a Fargate size (256, 512, 1024, 2048, 4096, 8192 or 16384)`);
  }
  if (!memOK(s.memoryMiB)) {
    throw new Error(`context memory: ${s.memoryMiB} MiB is not allowed by Fargate with cpu ${s.cpu}`);
  }
  // A WebSocket idle for longer than the ALB's idle timeout is cut by the
  // ALB; Eddy's pings are the traffic that keeps it open, so they must come
  // well inside it (twice as often leaves room for one lost ping).
  if (s.idleTimeoutSeconds < 2 * s.pingIntervalSeconds) {
    throw new Error(
      `context idleTimeout (${s.idleTimeoutSeconds}s) must be at least twice pingInterval (${s.pingIntervalSeconds}s): ` +
        'the load balancer closes a connection idle for longer than its idle timeout',
    );
  }
  // ECS waits at most 120 s between SIGTERM and SIGKILL.
  if (s.shutdownTimeoutSeconds + STOP_MARGIN_SECONDS > 120) {
    throw new Error(`context shutdownTimeout (${s.shutdownTimeoutSeconds}s) leaves no margin under ECS's 120 s stop timeout`);
  }
  if (s.certificateArn !== undefined && s.domainName === undefined) {
    throw new Error('context certificateArn needs domainName: the certificate is for a name, and clients must use that name');
  }
  if ((s.hostedZoneId === undefined) !== (s.hostedZoneName === undefined)) {
    throw new Error('context hostedZoneId and hostedZoneName go together (the zone id and its name, e.g. example.com)');
  }
  if (s.hostedZoneId !== undefined && s.domainName === undefined) {
    throw new Error('context hostedZoneId needs domainName: the record to create in the zone');
  }
  if (s.domainName !== undefined && s.certificateArn === undefined && s.hostedZoneId === undefined) {
    throw new Error(
      'context domainName needs certificateArn (an ACM certificate for it) or hostedZoneId and hostedZoneName ' +
        '(a Route 53 zone in which to validate a new certificate)',
    );
  }
  if (s.hostedZoneName !== undefined && s.domainName !== undefined) {
    const zone = s.hostedZoneName.replace(/\.$/, '');
    if (s.domainName !== zone && !s.domainName.endsWith('.' + zone)) {
      throw new Error(`context domainName ${s.domainName} is not in hostedZoneName ${zone}`);
    }
  }
  return s;
}

/**
 * Seconds added to shutdown_timeout for the load balancer's deregistration
 * delay and for ECS's stop timeout: time for the last close frames to leave
 * and for the process to exit after Eddy's drain deadline.
 */
export const STOP_MARGIN_SECONDS = 5;

function str(src: ContextSource, key: string): string | undefined {
  const v = src.tryGetContext(key);
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new Error(`context ${key}: want a string, got ${JSON.stringify(v)}`);
  return v.trim();
}

function int(src: ContextSource, key: string, def: number, min: number, max: number): number {
  const v = src.tryGetContext(key);
  if (v === undefined || v === null || v === '') return def;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n)) throw new Error(`context ${key}: want a whole number, got ${JSON.stringify(v)}`);
  if (n < min || n > max) throw new Error(`context ${key}: ${n} is outside ${min}..${max}`);
  return n;
}
