import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prebuiltBundlePath } from '../../workers/workflow-bundle';

describe('which workflow bundle the worker loads', () => {
  let dir: string;
  let built: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'labflow-bundle-'));
    built = join(dir, 'workflow-bundle.js');
    writeFileSync(built, '// bundle');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('takes WORKFLOW_BUNDLE_PATH first, and refuses one that does not exist', () => {
    assert.equal(prebuiltBundlePath(built, undefined), built);
    assert.throws(
      () => prebuiltBundlePath(join(dir, 'missing.js'), built),
      /WORKFLOW_BUNDLE_PATH names .*missing\.js, which does not exist/,
    );
  });

  it('otherwise loads the bundle the build wrote beside the compiled worker, when it is there', () => {
    assert.equal(prebuiltBundlePath(undefined, built), built);
    assert.equal(prebuiltBundlePath(undefined, join(dir, 'not-built.js')), undefined);
  });

  it('bundles the sources at start-up when the worker runs from TypeScript', () => {
    // These tests run the TypeScript sources under tsx: no build sits beside them.
    assert.equal(prebuiltBundlePath(undefined), undefined);
  });
});
