// Checks the synthesized CloudFormation template: what `cdk deploy` would
// create. There is no AWS account here, so the template is the product.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { EddyStack } from '../lib/eddy-stack';
import { readSettings } from '../lib/settings';

/** Synthesizes the stack with the given context, as `cdk synth -c k=v` would. */
function synth(context: Record<string, unknown> = {}): Template {
  // A registry image keeps these tests from staging the Docker build context
  // once per test; synth.test.ts covers the asset path.
  const app = new App({ context: { image: 'public.ecr.aws/example/eddy:test', ...context } });
  const stack = new EddyStack(app, 'Eddy', { settings: readSettings(app.node) });
  return Template.fromStack(stack);
}

type Resources = Record<string, { Type: string; Properties?: any }>;

function resources(t: Template, type: string): Resources {
  return t.findResources(type) as Resources;
}

function onlyId(r: Record<string, unknown>): string {
  const ids = Object.keys(r);
  assert.equal(ids.length, 1, `want exactly one, got ${ids.join(', ')}`);
  return ids[0];
}

function sgId(t: Template, description: string): string {
  return onlyId(t.findResources('AWS::EC2::SecurityGroup', { Properties: { GroupDescription: Match.stringLikeRegexp('^' + description) } }));
}

/** Every ingress rule of a security group, inline or as its own resource, resolved to plain objects. */
function ingressOf(t: Template, groupLogicalId: string): any[] {
  const sg = t.toJSON().Resources[groupLogicalId];
  const inline = (sg.Properties.SecurityGroupIngress ?? []) as any[];
  const separate = Object.values(resources(t, 'AWS::EC2::SecurityGroupIngress'))
    .map((r) => r.Properties)
    .filter((p) => JSON.stringify(p.GroupId) === JSON.stringify({ 'Fn::GetAtt': [groupLogicalId, 'GroupId'] }));
  return [...inline, ...separate];
}

test('creates a VPC when no vpcId is given, with no lookups', () => {
  const t = synth();
  t.resourceCountIs('AWS::EC2::VPC', 1);
  t.resourceCountIs('AWS::EC2::NatGateway', 1);
  // Subnets in two AZs, public and private.
  t.resourceCountIs('AWS::EC2::Subnet', 4);
});

test('the ECS service runs the requested count and size on Fargate in private subnets', () => {
  const t = synth({ desiredCount: '3', maxCount: '12', cpu: '1024', memory: '2048' });
  t.hasResourceProperties('AWS::ECS::Service', {
    LaunchType: 'FARGATE',
    DesiredCount: 3,
    DeploymentConfiguration: Match.objectLike({
      MinimumHealthyPercent: 100,
      MaximumPercent: 200,
      DeploymentCircuitBreaker: { Enable: true, Rollback: true },
    }),
    NetworkConfiguration: {
      AwsvpcConfiguration: Match.objectLike({ AssignPublicIp: 'DISABLED' }),
    },
    LoadBalancers: [Match.objectLike({ ContainerName: 'eddy', ContainerPort: 8080 })],
  });
  t.hasResourceProperties('AWS::ECS::TaskDefinition', {
    Cpu: '1024',
    Memory: '2048',
    RequiresCompatibilities: ['FARGATE'],
    ContainerDefinitions: [
      Match.objectLike({
        Name: 'eddy',
        Image: 'public.ecr.aws/example/eddy:test',
        PortMappings: [Match.objectLike({ ContainerPort: 8080 })],
        StopTimeout: 15,
      }),
    ],
  });
  t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', { MinCapacity: 3, MaxCapacity: 12 });
});

test('default size is 2 tasks of 0.5 vCPU and 1 GB', () => {
  const t = synth();
  t.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 2 });
  t.hasResourceProperties('AWS::ECS::TaskDefinition', { Cpu: '512', Memory: '1024' });
});

test('the target group checks /readyz and drains for shutdown_timeout plus a margin', () => {
  const t = synth();
  t.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
    Port: 8080,
    Protocol: 'HTTP',
    TargetType: 'ip',
    HealthCheckPath: '/readyz',
    Matcher: { HttpCode: '200' },
    TargetGroupAttributes: Match.arrayWith([{ Key: 'deregistration_delay.timeout_seconds', Value: '15' }]),
  });
  // shutdown_timeout is a parameter: the deregistration delay, ECS's stop
  // timeout and the task's EDDY_SHUTDOWN_TIMEOUT all follow it.
  const t30 = synth({ shutdownTimeout: '30' });
  t30.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
    TargetGroupAttributes: Match.arrayWith([{ Key: 'deregistration_delay.timeout_seconds', Value: '35' }]),
  });
  t30.hasResourceProperties('AWS::ECS::TaskDefinition', {
    ContainerDefinitions: [
      Match.objectLike({
        StopTimeout: 35,
        Environment: Match.arrayWith([{ Name: 'EDDY_SHUTDOWN_TIMEOUT', Value: '30s' }]),
      }),
    ],
  });
});

test('the load balancer idle timeout is above the ping interval', () => {
  const t = synth();
  t.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
    Scheme: 'internet-facing',
    LoadBalancerAttributes: Match.arrayWith([{ Key: 'idle_timeout.timeout_seconds', Value: '120' }]),
  });
  t.hasResourceProperties('AWS::ECS::TaskDefinition', {
    ContainerDefinitions: [Match.objectLike({ Environment: Match.arrayWith([{ Name: 'EDDY_PING_INTERVAL', Value: '25s' }]) })],
  });
  assert.throws(() => synth({ idleTimeout: '40' }), /idleTimeout \(40s\) must be at least twice pingInterval \(25s\)/);
});

test('HTTP only without a domain: listener on 80 forwards to the tasks', () => {
  const t = synth();
  t.resourceCountIs('AWS::ElasticLoadBalancingV2::Listener', 1);
  t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
    Port: 80,
    Protocol: 'HTTP',
    DefaultActions: [Match.objectLike({ Type: 'forward' })],
  });
  t.resourceCountIs('AWS::CertificateManager::Certificate', 0);
  const out = t.toJSON().Outputs;
  assert.match(JSON.stringify(out.WebSocketUrl.Value), /"ws:\/\/"/);
  assert.match(JSON.stringify(out.ApiUrl.Value), /"http:\/\/"/);
});

test('HTTPS with a given certificate: 443 serves it, 80 redirects, URLs use the domain', () => {
  const arn = 'arn:aws:acm:us-east-1:123456789012:certificate/abcd';
  const t = synth({ domainName: 'rt.example.com', certificateArn: arn });
  t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
    Port: 443,
    Protocol: 'HTTPS',
    Certificates: [{ CertificateArn: arn }],
    DefaultActions: [Match.objectLike({ Type: 'forward' })],
  });
  t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
    Port: 80,
    DefaultActions: [Match.objectLike({ Type: 'redirect', RedirectConfig: Match.objectLike({ Port: '443', Protocol: 'HTTPS' }) })],
  });
  const out = t.toJSON().Outputs;
  assert.equal(out.WebSocketUrl.Value, 'wss://rt.example.com/ws');
  assert.equal(out.ApiUrl.Value, 'https://rt.example.com/api/v1');
  t.resourceCountIs('AWS::Route53::RecordSet', 0);
});

test('HTTPS with a hosted zone: a DNS-validated certificate and an alias record', () => {
  const t = synth({ domainName: 'rt.example.com', hostedZoneId: 'Z0123456789ABC', hostedZoneName: 'example.com' });
  t.hasResourceProperties('AWS::CertificateManager::Certificate', {
    DomainName: 'rt.example.com',
    ValidationMethod: 'DNS',
    DomainValidationOptions: [{ DomainName: 'rt.example.com', HostedZoneId: 'Z0123456789ABC' }],
  });
  t.hasResourceProperties('AWS::Route53::RecordSet', {
    Name: 'rt.example.com.',
    Type: 'A',
    HostedZoneId: 'Z0123456789ABC',
    AliasTarget: Match.objectLike({}),
  });
});

test('bad context is refused with the key named', () => {
  assert.throws(() => synth({ desiredCount: 'two' }), /context desiredCount: want a whole number, got "two"/);
  assert.throws(() => synth({ cpu: '512', memory: '512' }), /context memory: 512 MiB is not allowed by Fargate with cpu 512/);
  assert.throws(() => synth({ desiredCount: '5', maxCount: '3' }), /maxCount \(3\) must be at least desiredCount \(5\)/);
  assert.throws(() => synth({ certificateArn: 'arn:aws:acm:us-east-1:1:certificate/x' }), /certificateArn needs domainName/);
  assert.throws(() => synth({ domainName: 'rt.example.com' }), /domainName needs certificateArn/);
  assert.throws(() => synth({ vpcId: 'my-vpc' }), /context vpcId: "my-vpc" is not a VPC id/);
  assert.throws(
    () => synth({ domainName: 'rt.other.org', hostedZoneId: 'Z1', hostedZoneName: 'example.com' }),
    /domainName rt.other.org is not in hostedZoneName example.com/,
  );
});

test('Redis: a replica with automatic failover across AZs, encrypted in transit and at rest', () => {
  const t = synth();
  t.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', {
    Engine: 'redis',
    CacheNodeType: 'cache.t4g.small',
    NumCacheClusters: 2,
    AutomaticFailoverEnabled: true,
    MultiAZEnabled: true,
    TransitEncryptionEnabled: true,
    TransitEncryptionMode: 'required',
    AtRestEncryptionEnabled: true,
    SnapshotRetentionLimit: 7,
  });
  // Cluster mode stays off: Eddy's client is single-server.
  const rg = Object.values(resources(t, 'AWS::ElastiCache::ReplicationGroup'))[0].Properties;
  assert.equal(rg.NumNodeGroups, undefined);
  // The tasks reach the primary endpoint over TLS.
  t.hasResourceProperties('AWS::ECS::TaskDefinition', {
    ContainerDefinitions: [
      Match.objectLike({
        Environment: Match.arrayWith([
          {
            Name: 'EDDY_REDIS',
            Value: {
              'Fn::Join': [
                '',
                ['rediss://', { 'Fn::GetAtt': ['Redis', 'PrimaryEndPoint.Address'] }, ':', { 'Fn::GetAtt': ['Redis', 'PrimaryEndPoint.Port'] }, '/0'],
              ],
            },
          },
        ]),
      }),
    ],
  });
});

test('keys are generated in Secrets Manager and referenced by the task, never inlined', () => {
  const t = synth();
  const secrets = resources(t, 'AWS::SecretsManager::Secret');
  assert.equal(Object.keys(secrets).length, 3);
  for (const s of Object.values(secrets)) {
    // Generated by Secrets Manager at deploy time: no value in the template.
    assert.equal(s.Properties.SecretString, undefined);
    assert.ok(s.Properties.GenerateSecretString, 'secret must be generated');
  }
  const byDescription = (word: string) => onlyId(t.findResources('AWS::SecretsManager::Secret', {
    Properties: { Description: Match.stringLikeRegexp(word) },
  }));
  const want: Record<string, string> = {
    EDDY_SECRET: byDescription('EDDY_SECRET'),
    EDDY_API_KEY: byDescription('EDDY_API_KEY'),
    EDDY_ADMIN_KEY: byDescription('EDDY_ADMIN_KEY'),
  };
  const container = Object.values(resources(t, 'AWS::ECS::TaskDefinition'))[0].Properties.ContainerDefinitions[0];
  const got: Record<string, unknown> = {};
  for (const s of container.Secrets) got[s.Name] = s.ValueFrom;
  for (const [name, id] of Object.entries(want)) {
    assert.deepEqual(got[name], { Ref: id }, `${name} must come from secret ${id}`);
  }
  const envNames = (container.Environment as { Name: string }[]).map((e) => e.Name);
  for (const name of Object.keys(want)) assert.ok(!envNames.includes(name), `${name} must not be a plain variable`);
  // Only the execution role may read them, and only these three.
  const policies = JSON.stringify(resources(t, 'AWS::IAM::Policy'));
  assert.match(policies, /secretsmanager:GetSecretValue/);
});

test('outputs give the URLs and where to read the keys, never a key', () => {
  const t = synth();
  const out = t.toJSON().Outputs as Record<string, { Value: unknown }>;
  for (const name of ['WebSocketUrl', 'ApiUrl', 'JwtSecretArn', 'ApiKeyArn', 'AdminKeyArn', 'GetApiKeyCommand', 'GetJwtSecretCommand', 'GetAdminKeyCommand', 'LogGroupName']) {
    assert.ok(out[name], `output ${name} missing`);
  }
  const apiKeyId = onlyId(t.findResources('AWS::SecretsManager::Secret', { Properties: { Description: Match.stringLikeRegexp('EDDY_API_KEY') } }));
  assert.deepEqual(out.ApiKeyArn.Value, { Ref: apiKeyId });
  assert.deepEqual(out.GetApiKeyCommand.Value, {
    'Fn::Join': ['', ['aws secretsmanager get-secret-value --region ', { Ref: 'AWS::Region' }, ' --secret-id ', { Ref: apiKeyId }, ' --query SecretString --output text']],
  });
  // A secret's value could reach an output only through a dynamic reference
  // or an attribute of the secret; neither may appear in any output.
  const text = JSON.stringify(out);
  assert.doesNotMatch(text, /resolve:secretsmanager/);
  assert.doesNotMatch(text, /"SecretString"/);
  for (const id of Object.keys(resources(t, 'AWS::SecretsManager::Secret'))) {
    assert.doesNotMatch(text, new RegExp(`"Fn::GetAtt":\\["${id}"`));
  }
  // Nor in the whole template.
  assert.doesNotMatch(JSON.stringify(t.toJSON()), /resolve:secretsmanager/);
});

test('security groups: only the load balancer reaches the tasks, only the tasks reach Redis', () => {
  const t = synth();
  const alb = sgId(t, 'Eddy load balancer');
  const tasks = sgId(t, 'Eddy tasks');
  const redis = sgId(t, 'Eddy Redis');

  const taskIn = ingressOf(t, tasks);
  assert.equal(taskIn.length, 1, `task ingress: ${JSON.stringify(taskIn)}`);
  assert.deepEqual(
    { from: taskIn[0].FromPort, to: taskIn[0].ToPort, proto: taskIn[0].IpProtocol, src: taskIn[0].SourceSecurityGroupId },
    { from: 8080, to: 8080, proto: 'tcp', src: { 'Fn::GetAtt': [alb, 'GroupId'] } },
  );

  const redisIn = ingressOf(t, redis);
  assert.equal(redisIn.length, 1, `redis ingress: ${JSON.stringify(redisIn)}`);
  assert.deepEqual(
    { from: redisIn[0].FromPort, to: redisIn[0].ToPort, proto: redisIn[0].IpProtocol, src: redisIn[0].SourceSecurityGroupId },
    { from: 6379, to: 6379, proto: 'tcp', src: { 'Fn::GetAtt': [tasks, 'GroupId'] } },
  );
  t.hasResourceProperties('AWS::ElastiCache::ReplicationGroup', { SecurityGroupIds: [{ 'Fn::GetAtt': [redis, 'GroupId'] }] });
  t.hasResourceProperties('AWS::ECS::Service', {
    NetworkConfiguration: { AwsvpcConfiguration: Match.objectLike({ SecurityGroups: [{ 'Fn::GetAtt': [tasks, 'GroupId'] }] }) },
  });

  // The load balancer is open to clients on 80 (and 443 with HTTPS) only,
  // and may send only to the tasks on 8080.
  const albIn = ingressOf(t, alb);
  assert.deepEqual(albIn.map((r) => [r.FromPort, r.CidrIp]), [[80, '0.0.0.0/0']]);
  const albOut = Object.values(resources(t, 'AWS::EC2::SecurityGroupEgress'))
    .map((r) => r.Properties)
    .filter((p) => JSON.stringify(p.GroupId) === JSON.stringify({ 'Fn::GetAtt': [alb, 'GroupId'] }));
  assert.equal(albOut.length, 1);
  assert.deepEqual([albOut[0].FromPort, albOut[0].DestinationSecurityGroupId], [8080, { 'Fn::GetAtt': [tasks, 'GroupId'] }]);
  // Redis sends nothing out on its own.
  const redisSg = t.toJSON().Resources[redis].Properties;
  assert.deepEqual(redisSg.SecurityGroupEgress.map((e: any) => e.CidrIp), ['255.255.255.255/32']);

  const https = synth({ domainName: 'rt.example.com', certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/abcd' });
  const albHttps = ingressOf(https, sgId(https, 'Eddy load balancer'));
  assert.deepEqual(albHttps.map((r) => r.FromPort).sort((a, b) => a - b), [80, 443]);
});

test('autoscaling on CPU (target tracking) and on connections per task (step scaling)', () => {
  const t = synth({ connectionsPerTask: '4000', cpuTargetPercent: '50' });
  t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
    PolicyType: 'TargetTrackingScaling',
    TargetTrackingScalingPolicyConfiguration: Match.objectLike({
      PredefinedMetricSpecification: { PredefinedMetricType: 'ECSServiceAverageCPUUtilization' },
      TargetValue: 50,
    }),
  });
  t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
    PolicyType: 'StepScaling',
    StepScalingPolicyConfiguration: Match.objectLike({
      AdjustmentType: 'ChangeInCapacity',
      StepAdjustments: Match.arrayWith([Match.objectLike({ ScalingAdjustment: 1 })]),
    }),
  });
  t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
    PolicyType: 'StepScaling',
    StepScalingPolicyConfiguration: Match.objectLike({
      StepAdjustments: [Match.objectLike({ ScalingAdjustment: -1 })],
    }),
  });
  // The alarms watch connections per task computed from the ALB's metrics.
  const alarms = Object.values(resources(t, 'AWS::CloudWatch::Alarm')).map((a) => a.Properties);
  const conn = alarms.filter((a) => JSON.stringify(a.Metrics ?? []).includes('ActiveConnectionCount'));
  assert.equal(conn.length, 2, 'one scale-out and one scale-in alarm');
  const thresholds = conn.map((a) => a.Threshold).sort((a, b) => a - b);
  assert.deepEqual(thresholds, [2000, 4000]);
  for (const a of conn) {
    const expr = a.Metrics.find((m: any) => m.Expression);
    assert.match(expr.Expression, /FILL\(active, 0\) \/ \(2 \* IF\(healthy > 1, healthy, 1\)\)/);
    const names = a.Metrics.filter((m: any) => m.MetricStat).map((m: any) => m.MetricStat.Metric.MetricName).sort();
    assert.deepEqual(names, ['ActiveConnectionCount', 'HealthyHostCount']);
  }
});

test('logs go to a CloudWatch log group with a retention, deleted with the stack', () => {
  const t = synth({ logRetentionDays: '14' });
  t.hasResource('AWS::Logs::LogGroup', {
    Properties: { RetentionInDays: 14 },
    DeletionPolicy: 'Delete',
  });
  const logGroup = onlyId(resources(t, 'AWS::Logs::LogGroup'));
  t.hasResourceProperties('AWS::ECS::TaskDefinition', {
    ContainerDefinitions: [
      Match.objectLike({
        LogConfiguration: {
          LogDriver: 'awslogs',
          Options: Match.objectLike({ 'awslogs-group': { Ref: logGroup }, 'awslogs-stream-prefix': 'eddy' }),
        },
      }),
    ],
  });
});

test('cdk destroy removes everything: no resource is retained', () => {
  const t = synth({ domainName: 'rt.example.com', hostedZoneId: 'Z0123456789ABC', hostedZoneName: 'example.com' });
  for (const [id, r] of Object.entries(t.toJSON().Resources as Record<string, any>)) {
    assert.notEqual(r.DeletionPolicy, 'Retain', `${id} (${r.Type}) would be retained`);
    assert.notEqual(r.DeletionPolicy, 'RetainExceptOnCreate', `${id} (${r.Type}) would be retained`);
    assert.notEqual(r.UpdateReplacePolicy, 'Retain', `${id} (${r.Type}) would be retained on replacement`);
  }
});

test('a registry image given as context is used as is (synth.test.ts covers the Dockerfile build)', () => {
  const t = synth({ image: 'ghcr.io/me/eddy:1.2.3' });
  t.hasResourceProperties('AWS::ECS::TaskDefinition', {
    ContainerDefinitions: [Match.objectLike({ Image: 'ghcr.io/me/eddy:1.2.3' })],
  });
});

test('an existing VPC is looked up only when vpcId is given', () => {
  // Without vpcId the assembly asks for no context at all (see the first test
  // and synth.test.ts, which runs with --no-lookups).
  const plain = new App({ context: { image: 'public.ecr.aws/example/eddy:test' } });
  new EddyStack(plain, 'Eddy', { settings: readSettings(plain.node) });
  assert.equal(plain.synth().manifest.missing, undefined);

  const app = new App({ context: { image: 'public.ecr.aws/example/eddy:test', vpcId: 'vpc-0123456789abcdef0' } });
  new EddyStack(app, 'Eddy', { settings: readSettings(app.node), env: { account: '123456789012', region: 'us-east-1' } });
  const missing = app.synth().manifest.missing ?? [];
  const vpcLookups = missing.filter((m) => m.provider === 'vpc-provider');
  assert.equal(vpcLookups.length, 1, JSON.stringify(missing));
  assert.equal((vpcLookups[0].props as any).filter['vpc-id'], 'vpc-0123456789abcdef0');
});
