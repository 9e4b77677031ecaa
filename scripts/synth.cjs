#!/usr/bin/env node
// The `app` of cdk8s.yaml and `npm run synth`: runs main.ts, compiled once per change of the
// sources (scripts/compile.cjs).
'use strict';
const path = require('node:path');
const { compiledProject } = require('./compile.cjs');

const root = path.resolve(process.env.LEARNFLOW_ROOT || path.join(__dirname, '..'));
const compiled = compiledProject(root);
process.env.LEARNFLOW_ROOT = root;
require(path.join(compiled, 'main.js'));
