// Runs the real `cdk synth` CLI (the command a user runs) with the default
// settings: the image built from deploy/Dockerfile. Synthesis must work with
// no AWS account and no network, and must only stage the Docker build
// context, never run Docker: Docker runs at `cdk deploy`.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const appDir = path.resolve(__dirname, '..', '..');
const cdkBin = path.join(appDir, 'node_modules', '.bin', 'cdk');

test('cdk synth stages deploy/Dockerfile with the repository as context, without running Docker or AWS lookups', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'eddy-cdk-synth-'));
  try {
    // CDK_DOCKER names the docker executable CDK would run: this one
    // records any call and fails, so a synth that needed Docker fails too.
    const dockerLog = path.join(tmp, 'docker-calls');
    const fakeDocker = path.join(tmp, 'docker');
    fs.writeFileSync(fakeDocker, `#!/bin/sh\necho "$@" >> '${dockerLog}'\nexit 1\n`, { mode: 0o755 });
    const out = path.join(tmp, 'cdk.out');
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      CDK_DOCKER: fakeDocker,
      // No AWS account: lookups (Vpc.fromLookup, AZs of a pinned account)
      // would fail here instead of quietly using cached values.
      AWS_ACCESS_KEY_ID: '',
      AWS_SECRET_ACCESS_KEY: '',
      AWS_PROFILE: '',
      AWS_CONFIG_FILE: path.join(tmp, 'no-aws-config'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(tmp, 'no-aws-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      CDK_DISABLE_VERSION_CHECK: '1',
      CDK_DISABLE_CLI_TELEMETRY: 'true',
    };
    delete env.CDK_DEFAULT_ACCOUNT;
    delete env.CDK_DEFAULT_REGION;
    // --no-lookups: a lookup that is not already answered is an error.
    // --build true: `npm test` has just compiled the app with tsc (cdk.json's
    // build step, which `cdk deploy` runs, would compile it a second time).
    const r = spawnSync(cdkBin, ['synth', '--quiet', '--no-notices', '--no-lookups', '--build', 'true', '--output', out], {
      cwd: appDir,
      env,
      encoding: 'utf8',
      timeout: 180_000,
    });
    assert.equal(r.status, 0, `cdk synth failed:\n${r.stdout}\n${r.stderr}`);
    assert.ok(!fs.existsSync(dockerLog), `synth ran docker: ${fs.existsSync(dockerLog) ? fs.readFileSync(dockerLog, 'utf8') : ''}`);

    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    assert.equal(manifest.missing, undefined, `synth needed context it could not look up: ${JSON.stringify(manifest.missing)}`);

    const template = JSON.parse(fs.readFileSync(path.join(out, 'Eddy.template.json'), 'utf8'));
    const services = Object.values(template.Resources as Record<string, { Type: string }>).filter((r) => r.Type === 'AWS::ECS::Service');
    assert.equal(services.length, 1);

    // The image is an asset: its build context staged, to be built at deploy.
    const assets = JSON.parse(fs.readFileSync(path.join(out, 'Eddy.assets.json'), 'utf8'));
    const images = Object.values(assets.dockerImages ?? {}) as { source: { directory: string; dockerFile: string; platform: string } }[];
    assert.equal(images.length, 1, 'one Docker image asset');
    const src = images[0].source;
    assert.equal(src.dockerFile, 'deploy/Dockerfile');
    assert.equal(src.platform, 'linux/amd64');
    const staged = path.join(out, src.directory);
    for (const need of ['go.mod', 'go.sum', 'deploy/Dockerfile', 'cmd/eddy', 'internal', 'clients/js/dist/eddy.min.js']) {
      assert.ok(fs.existsSync(path.join(staged, need)), `staged context lacks ${need}`);
    }
    // Nothing the build does not need, and never the CDK app (whose cdk.out
    // would otherwise be copied into itself).
    for (const never of ['.git', 'deploy/aws', 'clients/js/node_modules']) {
      assert.ok(!fs.existsSync(path.join(staged, never)), `staged context holds ${never}`);
    }
    // The task definition takes the image from that asset in the CDK bootstrap repository.
    const task = Object.values(template.Resources as Record<string, any>).find((r) => r.Type === 'AWS::ECS::TaskDefinition');
    assert.match(JSON.stringify(task.Properties.ContainerDefinitions[0].Image), /cdk-hnb659fds-container-assets/);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
