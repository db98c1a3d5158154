import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Where `npm run build` writes the prebuilt bundle: beside the compiled folders (dist/workers/ -> dist/). */
const BUILT_BUNDLE = join(__dirname, '..', 'workflow-bundle.js');
const RUNNING_COMPILED = __filename.endsWith('.js');

/**
 * The prebuilt workflow bundle the worker loads, if any: WORKFLOW_BUNDLE_PATH when set (it must exist), else, when
 * the worker runs compiled, the bundle the build wrote beside it. Without one (the TypeScript sources under tsx,
 * `npm start`) the worker bundles workflows/ at start-up.
 */
export function prebuiltBundlePath(
  configured: string | undefined,
  built = RUNNING_COMPILED ? BUILT_BUNDLE : undefined,
): string | undefined {
  if (configured) {
    if (!existsSync(configured))
      throw new Error(`WORKFLOW_BUNDLE_PATH names ${configured}, which does not exist (npm run build writes dist/workflow-bundle.js)`);
    return configured;
  }
  return built && existsSync(built) ? built : undefined;
}
