import { getExternalWorkflowHandle } from '@temporalio/workflow';
import { linkSourcesSignal, type CapaInput, type CapaSource } from '../../common/capa';
import { EntityId, EntityType, Stage } from '../../common/search-attributes';
import { startOrJoinChild } from '../lib';
import type { capaWorkflow } from '.';

/**
 * Another process's decision about a CAPA, taken up: link its sources to the open CAPA it chose (a signal the CAPA
 * run believes only as far as Postgres bears it out), or start the new CAPA run it numbered, which outlives the
 * caller. A retried start joins the run already there.
 */
export async function openOrLinkCapa(
  plan: { kind: 'link'; workflowId: string } | { kind: 'start'; workflowId: string; input: CapaInput },
  sources: CapaSource[],
  by: string,
): Promise<void> {
  if (plan.kind === 'link') {
    await getExternalWorkflowHandle(plan.workflowId).signal(linkSourcesSignal, { sources, by });
    return;
  }
  await startOrJoinChild<typeof capaWorkflow>('capaWorkflow', {
    workflowId: plan.workflowId,
    args: [plan.input],
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    typedSearchAttributes: [
      { key: EntityType, value: 'capa' },
      { key: EntityId, value: plan.input.number },
      { key: Stage, value: 'initiated' },
    ],
  });
}
