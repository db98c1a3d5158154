import assert from 'node:assert/strict';
import { temporal } from '@temporalio/proto';
import pg from 'pg';
import { EntityId } from '../../common/search-attributes';
import { startPlatform, type Platform } from '../helpers/platform';
import { makeUsers, type TestUser } from '../helpers/users';
import { waitFor } from '../helpers/wait';
import { testEnv } from '../setup/env';
import { testTemporalKind } from '../setup/test-temporal';
import { oneStage, underReview } from '../api/support';

/**
 * The queries operators type in the Web UI and the API relies on, against the run's Temporal: on the cluster
 * profile (TEST_TEMPORAL=cluster) that is SQL advanced visibility on PostgreSQL.
 */
describe('search-attribute queries on the visibility store', () => {
  let p: Platform;
  let u: Record<'author' | 'rita', TestUser>;

  before(async () => {
    p = await startPlatform();
    u = await makeUsers({ author: ['author'], rita: ['reviewer'] });
  });
  after(() => p.stop());

  const ids = async (query: string) => {
    const found: string[] = [];
    for await (const run of testEnv().client.workflow.list({ query })) found.push(run.workflowId);
    return found;
  };

  it('registers labflow attributes with their types', async () => {
    const listed = await testEnv().client.connection.operatorService.listSearchAttributes({ namespace: 'default' });
    const types = Object.fromEntries(Object.entries(listed.customAttributes ?? {}).map(([name, type]) => [name, Number(type)]));
    const { INDEXED_VALUE_TYPE_KEYWORD: keyword, INDEXED_VALUE_TYPE_KEYWORD_LIST: keywordList, INDEXED_VALUE_TYPE_DATETIME: datetime } =
      temporal.api.enums.v1.IndexedValueType;
    assert.deepEqual(
      { EntityType: types.EntityType, EntityId: types.EntityId, Stage: types.Stage, Assignees: types.Assignees, DueAt: types.DueAt },
      { EntityType: keyword, EntityId: keyword, Stage: keyword, Assignees: keywordList, DueAt: datetime },
    );
  });

  it('finds a run by EntityId, Stage, Assignees and DueAt, alone and together', async () => {
    const v = await underReview(p, u.author, oneStage([u.rita]));
    const handle = testEnv().client.workflow.getHandle(v.workflowId);
    // Visibility is eventually consistent: wait until the run is indexed with its review stage.
    const attributes = await waitFor(async () => {
      const description = await handle.describe();
      const found = await ids(`EntityId = "${v.number}"`);
      const stage = description.typedSearchAttributes.get(EntityId) && description.searchAttributes.Stage?.[0];
      return found.includes(v.workflowId) && stage ? description.searchAttributes : null;
    }, `${v.workflowId} indexed`);
    const stage = String(attributes.Stage![0]);
    const due = attributes.DueAt![0] as Date;
    assert.ok(due instanceof Date && due.getTime() > Date.now(), `DueAt ${String(due)} lies ahead`);
    const assignee = (attributes.Assignees as string[]).find((a) => a.includes(u.rita.username));
    assert.ok(assignee, `Assignees ${JSON.stringify(attributes.Assignees)} name the reviewer`);

    await waitFor(async () => (await ids(`Stage = "${stage}" AND EntityId = "${v.number}"`)).includes(v.workflowId), 'by Stage');
    assert.deepEqual(await ids(`Assignees = "${assignee}"`), [v.workflowId]);
    const window = `DueAt > "${new Date(due.getTime() - 60_000).toISOString()}" AND DueAt < "${new Date(due.getTime() + 60_000).toISOString()}"`;
    assert.ok((await ids(`${window} AND EntityType = "document"`)).includes(v.workflowId), 'by DueAt');
    assert.deepEqual(await ids(`EntityId = "${v.number}" AND Stage = "${stage}" AND Assignees = "${assignee}" AND ${window}`), [v.workflowId]);
    // And a query that must not match does not.
    assert.deepEqual(await ids(`EntityId = "${v.number}" AND Stage = "no-such-stage"`), []);
    const count = await testEnv().client.workflow.count(`EntityId = "${v.number}"`);
    assert.equal(count.count, 1);

    if (testTemporalKind() === 'cluster') {
      // What answered is PostgreSQL: the run's row in Temporal's visibility database carries the attributes.
      const visibility = new pg.Client({ connectionString: process.env.TEST_TEMPORAL_VISIBILITY_URL });
      await visibility.connect();
      try {
        const { rows } = await visibility.query('select search_attributes from executions_visibility where workflow_id = $1', [v.workflowId]);
        assert.equal(rows.length, 1);
        // Stored under the column names SQL visibility gives custom attributes (Keyword01...), not their aliases.
        const stored = Object.values(rows[0].search_attributes as Record<string, unknown>).flat();
        assert.ok(stored.includes(v.number) && stored.includes(stage) && stored.includes(assignee), JSON.stringify(rows[0].search_attributes));
      } finally {
        await visibility.end();
      }
    }
  });
});
