import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { createApp } from '../../api/app';
import { createAuthenticator } from '../../api/auth';
import { REDACTED_PATHS } from '../../platform/logger';
import { serve } from '../api/support';
import { testApiConfig } from '../helpers/platform';
import { makeUsers } from '../helpers/users';
import { testEnv } from '../setup/env';
import { marker, minutesAgo, notesUrl, PATIENTS, patientUrl } from './support';

describe('patient requests leave no PHI in the logs', () => {
  it('logs method, path, status and actor only: no name, search term, birth date, MRN or note text', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const log = pino({ level: 'trace', redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, sink);
    const config = testApiConfig('patients-logs');
    const server = await serve(
      createApp({ db: testEnv().db, temporal: testEnv().client, config, log, authenticate: createAuthenticator(testEnv().db, 1000) }),
    );
    try {
      const { carla } = await makeUsers({ carla: ['clinician'] });
      const key = carla.apiKey;
      const family = marker('Lg');
      const mrn = `MRN${marker('')}`;
      const canary = marker('Nt');
      const created = await server.api('POST', PATIENTS, {
        key,
        body: { givenName: 'Ada', familyName: family, dateOfBirth: '1966-06-16', mrn },
      });
      assert.equal(created.status, 201);
      const id = created.body.id;
      assert.equal((await server.api('GET', `${PATIENTS}?${new URLSearchParams({ q: `${family}, Ada` })}`, { key })).status, 200);
      const note = await server.api('POST', notesUrl(id), { key, body: { text: `S: ${canary}`, noteTime: minutesAgo(1) } });
      assert.equal(note.status, 201);
      const bad = [
        await server.api('POST', notesUrl(id), { key, body: { text: `${canary} before any heading`, noteTime: minutesAgo(1) } }),
        await server.api('POST', PATIENTS, { key, body: { givenName: `${family}1`, familyName: family, dateOfBirth: '1966-02-31' } }),
        await server.api('POST', PATIENTS, { key, body: { givenName: 'Ada', familyName: family, dateOfBirth: '1966-06-16', mrn } }),
        await server.api('PUT', `${notesUrl(id)}/${note.body.id}`, { key, body: { plan: canary, noteTime: minutesAgo(1), version: 9 } }),
      ];
      assert.deepEqual(
        bad.map((r) => r.status),
        [400, 400, 409, 409],
      );
      assert.equal((await server.api('DELETE', patientUrl(id), { key })).status, 204);

      const all = lines.join('');
      assert.ok(all.includes(id), 'requests were logged (by path)');
      for (const phi of [family, mrn, canary, '1966-06-16', '1966-02-31']) assert.ok(!all.includes(phi), `no "${phi}" in the logs`);
    } finally {
      await server.close();
    }
  });
});
