import assert from 'node:assert/strict';
import { toProblem } from '../../api/error-handler';

/** Errors PostgreSQL raises when it cannot serve a request now: a 503 the client may retry, never a 500. */
describe('database errors a request may meet', () => {
  const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });

  it('answers 503 when PostgreSQL has no connection slot or resource left, or cannot be reached', () => {
    for (const [code, message] of [
      ['53300', 'sorry, too many clients already'],
      ['53200', 'out of memory'],
      ['57P01', 'terminating connection due to administrator command'],
      ['ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'],
    ]) {
      const problem = toProblem(pgError(code, message));
      assert.equal(problem?.status, 503, code);
      assert.ok(!problem?.detail?.includes('sorry'), 'the database message is not quoted back');
    }
  });

  it('answers 503 when the transaction was undone as a deadlock victim or a serialization failure', () => {
    for (const code of ['40P01', '40001']) {
      const problem = toProblem(pgError(code, 'deadlock detected'));
      assert.equal(problem?.status, 503, code);
      assert.match(problem?.detail ?? '', /nothing was written/);
      assert.ok(!problem?.detail?.includes('deadlock detected'), 'the database message is not quoted back');
    }
  });

  it('leaves an error it does not know to the 500 path (logged, answered without detail)', () => {
    assert.equal(toProblem(pgError('42P01', 'relation "x" does not exist')), null);
  });
});
