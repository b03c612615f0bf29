// Main step: keep the two inputs for the post step (the runner's GITHUB_STATE),
// which the runner runs when the job ends. Plain Node, no packages.
'use strict';

const crypto = require('crypto');
const fs = require('fs');

// A workflow command's data, escaped as @actions/core escapes it.
function warning(message) {
  const data = String(message).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  process.stdout.write(`::warning::${data}\n`);
}

function save(name, value) {
  const file = process.env.GITHUB_STATE;
  if (!file) {
    throw new Error('GITHUB_STATE is not set');
  }
  const delimiter = `ghadelimiter_${crypto.randomUUID()}`;
  fs.appendFileSync(file, `${name}<<${delimiter}\n${value}\n${delimiter}\n`);
}

const python = (process.env.INPUT_PYTHON || '').trim();
const script = (process.env.INPUT_SCRIPT || '').trim();
const state = (process.env.INPUT_STATE || '').trim();
if (!script || !state) {
  warning('teleport-actions/auth end-of-job: no script or state given: tbot will not be stopped, nor its log shown, when the job ends.');
} else {
  try {
    save('python', python);
    save('script', script);
    save('state', state);
  } catch (err) {
    warning(`teleport-actions/auth end-of-job: could not save its state (${err.message}): tbot will not be stopped, nor its log shown, when the job ends.`);
  }
}
