import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Db } from '../../db/knex';

/**
 * The two processes a lab drives all day, through the HTTP API as its people do, each API action timed:
 *  - a document approval with one approver: create the document, add its version, submit it, (the approver sees
 *    the review task) read the version for its content hash, sign the approval; until the version is effective;
 *  - a sample intake: register the sample, receive it, inspect it, accept it; until it is accepted.
 * What a person waits for between actions (the task to appear, the state to be recorded) is polled in PostgreSQL
 * with the bench's own connection, so the API's timings are only the actions'.
 */

export const APPROVAL_ACTIONS = ['POST /documents', 'POST /documents/:n/versions', 'POST …/submit', 'GET …/versions/:v', 'POST …/decisions'] as const;
export const INTAKE_ACTIONS = ['POST /samples', 'POST …/receive', 'POST …/inspect', 'POST …/accept'] as const;
export type Action = (typeof APPROVAL_ACTIONS)[number] | (typeof INTAKE_ACTIONS)[number];

/** One lane's people (a lane is one of the bench's concurrent clients): distinct people, distinct keys. */
export interface LanePeople {
  author: string;
  reviewer: { username: string; apiKey: string; password: string };
  tech: string;
}

/** Every timed action's durations (ms), by action. */
export class Timings {
  readonly byAction = new Map<Action, number[]>();
  add(action: Action, ms: number): void {
    const list = this.byAction.get(action) ?? [];
    list.push(ms);
    this.byAction.set(action, list);
  }
  of(action: Action): number[] {
    return this.byAction.get(action) ?? [];
  }
  merge(other: Timings): void {
    for (const [action, list] of other.byAction) for (const ms of list) this.add(action, ms);
  }
}

const POLL_MS = 100;
const WAIT_MS = 180_000;

export class LabClient {
  constructor(
    private readonly baseUrl: string,
    private readonly db: Db,
    readonly timings: Timings,
  ) {}

  private async call(action: Action, method: string, path: string, key: string, expect: number, body?: unknown): Promise<Record<string, unknown>> {
    const started = performance.now();
    const res = await fetch(`${this.baseUrl}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const parsed = (await res.json()) as Record<string, unknown>;
    this.timings.add(action, performance.now() - started);
    if (res.status !== expect) throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(parsed)}`);
    return parsed;
  }

  /** Until the row's state is the one wanted (or one of them). */
  private async waitState(table: 'document_versions' | 'samples', where: Record<string, string>, states: string[]): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const row = (await this.db(table).where(where).first('state')) as { state: string } | undefined;
      if (row && states.includes(row.state)) return;
      if (Date.now() > deadline) throw new Error(`${table} ${JSON.stringify(where)} still ${row?.state ?? 'absent'} after ${WAIT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /** A document version submitted for one approver's signature, its review stage open: the open run a person acts on. */
  async openApproval(people: LanePeople, i: number): Promise<{ number: string; version: number; workflowId: string }> {
    const doc = await this.call('POST /documents', 'POST', '/documents', people.author, 201, { title: `Bench form ${i}`, docType: 'form' });
    const number = doc.number as string;
    const v = await this.call('POST /documents/:n/versions', 'POST', `/documents/${number}/versions`, people.author, 201, {
      content: `Bench form ${i}: record the balance check daily. ${randomBytes(4).toString('hex')}`,
    });
    const version = v.version as number;
    const submitted = await this.call('POST …/submit', 'POST', `/documents/${number}/versions/${version}/submit`, people.author, 202, {
      routing: [{ name: 'Review', rule: { type: 'any' }, assignees: [{ user: people.reviewer.username }] }],
    });
    const workflowId = submitted.workflowId as string;
    await this.waitState('document_versions', { workflow_id: workflowId }, ['in_review']);
    return { number, version, workflowId };
  }

  /** The approver reads the version (its content hash) and signs; resolves once the version is effective. */
  async approve(people: LanePeople, run: { number: string; version: number; workflowId: string }): Promise<void> {
    const path = `/documents/${run.number}/versions/${run.version}`;
    const read = await this.call('GET …/versions/:v', 'GET', path, people.reviewer.apiKey, 200);
    await this.call('POST …/decisions', 'POST', `${path}/decisions`, people.reviewer.apiKey, 200, {
      decision: 'approve',
      signature: { password: people.reviewer.password, meaning: 'approval', contentHash: read.contentHash },
    });
    await this.waitState('document_versions', { workflow_id: run.workflowId }, ['effective']);
  }

  /** A document approval from submit to effective. */
  async approval(people: LanePeople, i: number): Promise<void> {
    await this.approve(people, await this.openApproval(people, i));
  }

  /** A sample registered, received, inspected and accepted by a technician; resolves once it is accepted. */
  async intake(people: LanePeople): Promise<void> {
    const registered = await this.call('POST /samples', 'POST', '/samples', people.tech, 202, {
      sampleType: 'SERUM',
      tests: ['CMP'],
      patient: { name: 'Bench Patient', dob: '1970-01-01', mrn: 'MRN-BENCH' },
      collectedAt: new Date(Date.now() - 3_600_000).toISOString(),
      barcode: `BC-${randomBytes(6).toString('hex')}`,
    });
    const accession = registered.accession as string;
    const path = `/samples/${accession}`;
    await this.call('POST …/receive', 'POST', `${path}/receive`, people.tech, 200, { location: 'Central receiving', temperatureC: 4 });
    await this.call('POST …/inspect', 'POST', `${path}/inspect`, people.tech, 200, {
      identifiers: [
        { type: 'name', value: 'Bench Patient' },
        { type: 'mrn', value: 'MRN-BENCH' },
      ],
      container: 'SST',
      preservative: 'clot_activator',
      volumeMl: 3,
      temperatureC: 4,
      hemolyzed: false,
      clotted: false,
    });
    await this.call('POST …/accept', 'POST', `${path}/accept`, people.tech, 200);
    await this.waitState('samples', { accession }, ['accepted']);
  }
}

/** Runs `count` jobs on `lanes` concurrent lanes (job i on the next free lane); `check` is asked before each job. */
export async function onLanes(lanes: number, count: number, job: (lane: number, i: number) => Promise<void>, check: () => void): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      for (let i = next++; i < count; i = next++) {
        check();
        await job(lane, i);
      }
    }),
  );
}
