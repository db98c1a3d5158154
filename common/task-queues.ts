/** The task queue every labflow worker polls unless configured otherwise. */
export const DEFAULT_TASK_QUEUE = 'labflow';
