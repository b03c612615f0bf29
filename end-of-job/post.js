// Post step, when the job ends: run the member's own end-of-job program with the
// interpreter its step used. Cleanup trouble is a warning, never a failed job.
'use strict';

const { spawnSync } = require('child_process');

// A workflow command's data, escaped as @actions/core escapes it.
function warning(message) {
  const data = String(message).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
  process.stdout.write(`::warning::${data}\n`);
}

const script = process.env.STATE_script || '';
if (script) {
  // The step's own interpreter; else as the step's launcher chooses one.
  const python = process.env.STATE_python || process.env.TELEPORT_AUTH_PYTHON || 'python3';
  const done = spawnSync(python, ['-I', '-S', '-X', 'utf8', script], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, TELEPORT_AUTH_END_OF_JOB: process.env.STATE_state || '' },
    // Stopping tbot takes at most a few seconds; this only bounds a hang.
    timeout: 60000,
    killSignal: 'SIGKILL',
  });
  if (done.error) {
    warning(`teleport-actions/auth end-of-job: could not run ${python} ${script}: ${done.error.message}`);
  } else if (done.status !== 0) {
    const how = done.status === null ? `was killed by ${done.signal}` : `exited with code ${done.status}`;
    warning(`teleport-actions/auth end-of-job: ${python} ${script} ${how}.`);
  }
}
