import { sleep, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

/**
 * Every workflow, whatever its type, starts with a new one-second timer, added without a patch: a history recorded
 * before this change must not replay.
 */
export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [
    {
      async execute(input, next) {
        await sleep('1s');
        return next(input);
      },
    },
  ],
});
