/** A problem the user can fix (a port in use, a server that does not answer): shown as one line, without a stack. */
export class StartError extends Error {}

/** One line of progress from `npm start`, told apart from the prefixed output of the parts it runs. */
export function say(line: string): void {
  console.log(`[start] ${line}`);
}
