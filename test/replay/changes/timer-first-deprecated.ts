import { deprecatePatch, sleep, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

/**
 * The next step of the same change: once no run recorded before it is open, the old path goes and the patch is
 * deprecated. Runs recorded under patched() and runs recorded from now on replay; a pre-change run would not.
 */
export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [
    {
      async execute(input, next) {
        deprecatePatch('timer-first');
        await sleep('1s');
        return next(input);
      },
    },
  ],
});
