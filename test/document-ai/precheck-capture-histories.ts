/**
 * Captures the document-precheck run's replay fixtures into test/fixtures/histories/document-precheck/, and the
 * approval run that starts one (the `document-precheck` patch) into test/fixtures/histories/document-approval/.
 * Loaded by test/document-ai/capture-histories.ts (`npm run replay:capture`). No provider is configured: the
 * rule-based fallback answers.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { precheckWorkflowId } from '../../common/document-precheck';
import { fetchFixture, saveFixture } from '../../workers/replay';
import { approve, createDraft, submit, waitForState } from '../helpers/documents';
import { startPlatform, type Platform } from '../helpers/platform';
import { historiesDir } from '../helpers/replay-suite';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { sopText } from './precheck-support';

describe('capture document-precheck histories', () => {
  let p: Platform;
  let u: Record<'author' | 'rita' | 'april', TestUser>;
  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ author: ['author'], rita: ['reviewer'], april: ['approver'] });
  });
  after(() => p.stop());

  const ended = (workflowId: string, status: string) =>
    waitFor(
      async () =>
        (
          await testEnv()
            .client.workflow.getHandle(workflowId)
            .describe()
            .catch(() => undefined)
        )?.status.name === status,
      `${workflowId} ${status}`,
      60_000,
    );
  const save = async (folder: string, name: string, workflowId: string) => {
    const dir = historiesDir(folder);
    mkdirSync(dir, { recursive: true });
    await saveFixture(join(dir, `${name}.json`), await fetchFixture(testEnv().client, workflowId));
  };

  it('a rule-based pre-check of a form, and the approval run that started it, approved and effective', async () => {
    const draft = await createDraft(p, u.author, sopText(), 'Pipette calibration', 'form');
    const { workflowId } = await submit(p, u.author, draft.number, 1, {
      routing: [{ name: 'Review', assignees: [{ user: u.rita.username }] }],
    });
    const precheck = precheckWorkflowId(draft.number, 1);
    await ended(precheck, 'COMPLETED');
    assert.equal((await approve(p, u.rita, draft.number, 1, draft.contentHash)).status, 200);
    await waitForState(p, u.author.apiKey, draft.number, 1, 'effective');
    await save('document-precheck', 'rule-based-done', precheck);
    await save('document-approval', 'effective-with-precheck', workflowId);
  });

  it('a pre-check that fails for want of a checklist', async () => {
    const draft = await createDraft(p, u.author, sopText(), 'Pipette calibration', 'other');
    const routing = [
      { name: 'Review', assignees: [{ user: u.rita.username }] },
      { name: 'Approval', assignees: [{ user: u.april.username }] },
    ];
    await submit(p, u.author, draft.number, 1, { routing });
    const precheck = precheckWorkflowId(draft.number, 1);
    await ended(precheck, 'FAILED');
    await save('document-precheck', 'no-checklist-failed', precheck);
  });
});
