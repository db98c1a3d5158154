import { WithStartWorkflowOperation } from '@temporalio/client';
import { workflowIds } from '../../common/ids';
import type { Actor } from '../../common/roles';
import {
  DECISION_UPDATES,
  SUPPLIER_ACTIONS,
  supplierGrantedArgs,
  supplierQualificationQuery,
  type SupplierDecision,
} from '../../common/supplier-qualification';
import { erpSupplierExists, findErpSupplier, findSupplierQualification } from '../../db/erp-operations';
import type { supplierQualificationWorkflow } from '../../workflows/supplier-qualification';
import type { ApiDeps } from '../deps';
import { problems } from '../problem';
import { grantAction } from '../signing';

type Deps = Pick<ApiDeps, 'db' | 'temporal' | 'config'>;

/**
 * A supplier's qualification: the supplier as the ERP has it, the qualification as projected, and the decisions
 * as the run holds them while it runs (null once it ended or when it does not answer).
 */
export async function supplierQualificationView({ db, temporal }: Deps, name: string) {
  const supplier = await findErpSupplier(db, name);
  if (!supplier) throw problems.notFound(`supplier ${name}`);
  const projection = await findSupplierQualification(db, name);
  let live = null;
  if (projection && projection.status !== 'disqualified') {
    live = await temporal.workflow
      .getHandle(projection.workflow_id)
      .query(supplierQualificationQuery)
      .catch(() => null);
  }
  return { supplier, qualification: projection ?? { status: 'pending' }, decisions: live?.decisions ?? null };
}

/** QA's decision on a supplier, sent to its qualification run (started first where there is none). */
export async function decideOnSupplier(
  { db, temporal, config }: Deps,
  actor: Actor,
  name: string,
  decision: SupplierDecision,
  reason: string,
) {
  if (!(await erpSupplierExists(db, name))) throw problems.notFound(`supplier ${name}`);
  const current = await findSupplierQualification(db, name);
  if (current?.status === 'disqualified') throw problems.conflict('run-finished', `${name} is disqualified; nothing more can be done`);
  const workflowId = workflowIds.supplierQualification(name);
  // The run records the decision only with the grant written here for this caller, this decision and this reason.
  const grant = await grantAction({ db, config }, actor, { workflowId, action: SUPPLIER_ACTIONS[decision], args: supplierGrantedArgs({ reason }) });
  const start = new WithStartWorkflowOperation<typeof supplierQualificationWorkflow>('supplierQualificationWorkflow', {
    workflowId,
    taskQueue: config.taskQueue,
    // A run that ended otherwise than by disqualification (terminated by an operator) starts again from the projection.
    args: [{ supplier: name, status: current?.status }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
  });
  return temporal.workflow.executeUpdateWithStart(DECISION_UPDATES[decision], {
    args: [{ actor, grant, reason }],
    startWorkflowOperation: start,
  });
}
