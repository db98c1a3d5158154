import { CancellationScope, isCancellation, setHandler, workflowInfo } from '@temporalio/workflow';
import {
  completePeriodicReviewUpdate,
  decideUpdate,
  documentStateQuery,
  extendDueUpdate,
  obsoleteUpdate,
  reassignUpdate,
  supersededSignal,
  uploadRevisionUpdate,
  withdrawUpdate,
  type DocumentApprovalInput,
  type DocumentApprovalState,
} from '../../common/document-approval';
import { userDeactivatedSignal } from '../../common/deactivation';
import { upgradesWithEachBuild } from '../lib/versioning';
import { DocumentApprovalCase } from './document-approval-case';
import {
  validateDecision,
  validateExtension,
  validateObsoletion,
  validatePeriodicReview,
  validateReassignment,
  validateRevision,
  validateWithdrawal,
} from './validators';

upgradesWithEachBuild(documentApprovalWorkflow);

/**
 * One version of a controlled document, from submission to its end: review stages with electronic signatures,
 * revision rounds, the wait for the effective date, periodic reviews while effective, and supersession.
 */
export async function documentApprovalWorkflow(input: DocumentApprovalInput): Promise<DocumentApprovalState> {
  const approval = new DocumentApprovalCase(input, workflowInfo().workflowId);

  setHandler(documentStateQuery, () => approval.state);
  setHandler(decideUpdate, (decision) => approval.decide(decision), {
    validator: (decision) => validateDecision(approval, decision),
  });
  setHandler(withdrawUpdate, (withdrawal) => approval.withdraw(withdrawal), {
    validator: (withdrawal) => validateWithdrawal(approval, withdrawal),
  });
  setHandler(reassignUpdate, (reassignment) => approval.reassign(reassignment), {
    validator: (reassignment) => validateReassignment(approval, reassignment),
  });
  setHandler(extendDueUpdate, (extension) => approval.extendDue(extension), {
    validator: (extension) => validateExtension(approval, extension, Date.now()),
  });
  setHandler(uploadRevisionUpdate, (revision) => approval.uploadRevision(revision), {
    validator: (revision) => validateRevision(approval, revision),
  });
  setHandler(obsoleteUpdate, (obsoletion) => approval.obsolete(obsoletion), {
    validator: (obsoletion) => validateObsoletion(approval, obsoletion),
  });
  setHandler(completePeriodicReviewUpdate, (review) => approval.completePeriodicReview(review), {
    validator: (review) => validatePeriodicReview(approval, review),
  });
  setHandler(supersededSignal, (by) => approval.supersede(by));
  setHandler(userDeactivatedSignal, (user) => approval.handOverFrom(user));

  try {
    return await lifecycle(approval);
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // An operator cancelled the run: leave the record consistent before ending.
    await CancellationScope.nonCancellable(() => approval.closeAfterCancellation());
    throw err;
  }
}

/** Review, approval, the effective date, then life as the effective version; a continued run resumes there. */
async function lifecycle(approval: DocumentApprovalCase): Promise<DocumentApprovalState> {
  if (!approval.resumed) {
    approval.publish();
    const outcome = await approval.review();
    if (outcome === 'withdrawn') return approval.closeWithdrawn();
    if (outcome === 'rejected') return approval.closeRejected();
    await approval.approve();
    if (!(await approval.awaitEffectiveDate())) return approval.closeWithdrawn();
    await approval.makeEffective();
  }
  return approval.whileEffective();
}
