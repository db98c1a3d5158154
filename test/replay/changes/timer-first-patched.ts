import { patched, sleep, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

/** The same new timer behind patched(): runs recorded before the change keep their old path and replay cleanly. */
export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [
    {
      async execute(input, next) {
        if (patched('timer-first')) await sleep('1s');
        return next(input);
      },
    },
  ],
});
