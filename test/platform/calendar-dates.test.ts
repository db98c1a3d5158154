import assert from 'node:assert/strict';
import { testEnv } from '../setup/env';

/** A date of birth read from Postgres is the same calendar day in every time zone the process may run in. */
describe('calendar dates from PostgreSQL', () => {
  const zone = process.env.TZ;
  afterEach(() => {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  });

  for (const tz of ['Pacific/Kiritimati', 'UTC', 'Pacific/Pago_Pago']) {
    it(`reads 1980-05-01 as 1980-05-01 with TZ=${tz}`, async () => {
      process.env.TZ = tz;
      const { rows } = await testEnv().db.raw(`select date '1980-05-01' as dob, date '2000-02-29' as leap`);
      assert.equal(rows[0].dob, '1980-05-01');
      assert.equal(rows[0].leap, '2000-02-29');
    });
  }
});
