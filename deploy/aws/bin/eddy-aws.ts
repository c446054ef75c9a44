#!/usr/bin/env node
// The CDK app: one stack, configured by context (-c key=value or cdk.json).
import { App } from 'aws-cdk-lib';
import { EddyStack } from '../lib/eddy-stack';
import { readSettings } from '../lib/settings';

const app = new App();
const settings = readSettings(app.node);
const stackName = (app.node.tryGetContext('stackName') as string | undefined) || 'Eddy';

new EddyStack(app, stackName, {
  settings,
  description: 'Eddy real-time messaging: ECS Fargate nodes behind an ALB, ElastiCache Redis, keys in Secrets Manager',
  // An existing VPC is looked up, which needs the account and region; a
  // created one does not, so the stack stays environment-agnostic and
  // `cdk synth` works without AWS credentials.
  env: settings.vpcId
    ? { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION }
    : undefined,
});
