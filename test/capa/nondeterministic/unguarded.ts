import { sleep } from '@temporalio/workflow';
import type { CapaInput } from '../../../common/capa';
import { capaWorkflow as current } from '../../../workflows/capa';

/** The CAPA workflow with a timer added before anything else, unguarded: old histories must fail to replay. */
export async function capaWorkflow(input: CapaInput) {
  await sleep('1s');
  return current(input);
}
