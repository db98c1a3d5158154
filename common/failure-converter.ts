import { DefaultFailureConverter } from '@temporalio/common';

/**
 * Failure messages and stack traces go into a payload (`encodedAttributes`), so the payload codec encrypts them like
 * any other value; history then shows "Encoded failure". The workflow bundle embeds this module (bundleWorkflowCode's
 * failureConverterPath), so it is the same whether or not payload keys are configured: a bundle built once, e.g. in
 * the Docker image, serves both. Readers that know only the default converter still decode such failures.
 */
export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
