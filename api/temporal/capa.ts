import type { Client } from '@temporalio/client';
import { linkSourcesUpdate, type CapaInput, type CapaSource, type UserRef } from '../../common/capa';
import { capaGrantedArgs } from '../../common/capa-grants';
import { issueGrant } from '../../db/grants';
import { toActor } from '../../db/identity';
import { workflowIds } from '../../common/ids';
import { EntityId, EntityType, Stage } from '../../common/search-attributes';
import { allocateCapaNumber, openCapasNaming } from '../../db/capa';
import type { Db } from '../../db/knex';
import type { capaWorkflow } from '../../workflows';

export type NewCapa = Omit<CapaInput, 'number' | 'resume'>;

const LINK_GRANT_TTL_MS = 5 * 60_000;

/**
 * Numbers a new CAPA from this year's sequence and starts its run under `capa:<number>`. The number is fresh, so
 * the start cannot collide; the run's first activity writes the capas row and links the sources.
 */
export async function startCapaRun(client: Client, db: Db, taskQueue: string, capa: NewCapa) {
  const number = await allocateCapaNumber(db);
  const handle = await client.workflow.start<typeof capaWorkflow>('capaWorkflow', {
    workflowId: workflowIds.capa(number),
    taskQueue,
    args: [{ ...capa, number }],
    workflowIdConflictPolicy: 'FAIL',
    workflowIdReusePolicy: 'REJECT_DUPLICATE',
    typedSearchAttributes: [
      { key: EntityType, value: 'capa' },
      { key: EntityId, value: number },
      { key: Stage, value: 'initiated' },
    ],
  });
  return { number, workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
}

/**
 * For other processes (sample intake's rejected sample, a nonconformance, a complaint, an audit finding): opens a
 * CAPA for a source record, or links the record to the open CAPA that already names it instead of a duplicate.
 * Safe to call again with the same source: the second call finds the first CAPA and links nothing new.
 *
 *   const { number, linked } = await openCapaForSource(client, db, taskQueue, {
 *     source: { type: 'sample', id: 'ACC-260001' }, title: 'Haemolysed samples from ward 3', description: '…',
 *     initiatedBy: { userId, username },   // links to an open CAPA as this person: its owner or a QA manager
 *   });
 */
export async function openCapaForSource(
  client: Client,
  db: Db,
  taskQueue: string,
  request: {
    source: CapaSource;
    title: string;
    description: string;
    initiatedBy: UserRef;
    durations?: CapaInput['durations'];
  },
): Promise<{ number: string; workflowId: string; linked: boolean }> {
  const [existing] = await openCapasNaming(db, [request.source]);
  if (existing) {
    const workflowId = workflowIds.capa(existing.number);
    // Linking is a person's action like any other (the CAPA's owner or QA): the run records it with the grant
    // written here for the person named, and refuses it (Forbidden) for anyone else.
    const user = await db('users').where({ id: request.initiatedBy.userId, active: true }).first();
    if (!user) throw new Error(`no active user ${request.initiatedBy.username} to link ${request.source.type}:${request.source.id}`);
    const actor = toActor(user);
    const sources = [request.source];
    const grant = await issueGrant(db, {
      userId: actor.userId,
      workflowId,
      action: 'capa.link_sources',
      args: capaGrantedArgs['capa.link_sources']({ sources }),
      ttlMs: LINK_GRANT_TTL_MS,
    });
    await client.workflow.getHandle(workflowId).executeUpdate(linkSourcesUpdate, { args: [{ actor, grant, sources, by: actor.username }] });
    return { number: existing.number, workflowId, linked: true };
  }
  const started = await startCapaRun(client, db, taskQueue, {
    title: request.title,
    description: request.description,
    sources: [request.source],
    initiatedBy: request.initiatedBy,
    durations: request.durations,
  });
  return { number: started.number, workflowId: started.workflowId, linked: false };
}

/** The run of a CAPA, addressed by its number. */
export const capaRun = (client: Client, number: string) => client.workflow.getHandle(workflowIds.capa(number));
