import type { LlmProviderName } from '../../common/llm-providers';

export { LLM_PROVIDERS, type LlmProviderName } from '../../common/llm-providers';
/** The last resort: no network, no model; its output is labelled as not AI-generated. */
export const EXTRACTIVE = 'extractive' as const;
export type SummarizerName = LlmProviderName | typeof EXTRACTIVE;

/** One SOAP note as the summarizers see it: sections only, identifiers already stripped. */
export interface NoteForSummary {
  noteTime: string;
  subjective: string;
  objective: string;
  assessment: string;
  plan: string;
}

/** What is sent to a model: built from the notes by prompt.ts, versioned and hashed for provenance. */
export interface SummaryPrompt {
  system: string;
  user: string;
  templateVersion: string;
  /** SHA-256 of the template (not of the notes): which instructions produced a summary. */
  templateHash: string;
}

export interface GenerateOptions {
  maxTokens: number;
  temperature: number;
  /** Aborted when the activity is cancelled or times out. */
  signal?: AbortSignal;
  /** Client-side bound on the HTTP call; the activity's own timeout is the outer bound. */
  timeoutMs: number;
}

/** A complete model answer. A refused, truncated or malformed answer is an LlmError instead. */
export interface Generation {
  text: string;
  /** The exact model string the provider reported. */
  model: string;
  inputTokens: number | null;
  outputTokens: number | null;
  /** Parameters as sent (model asked for, max tokens, temperature, num_ctx...), for provenance. */
  parameters: Record<string, unknown>;
}

/** One provider behind its real SDK, with the SDK's own retries off: Temporal retries. */
export interface LlmProvider {
  name: LlmProviderName;
  /** The model asked for. */
  model: string;
  generate(prompt: SummaryPrompt, options: GenerateOptions): Promise<Generation>;
}
