import { z } from 'zod';

const words = (max: number) => z.string().trim().min(1, 'must not be empty').max(max);

/** A type's checklist as document control or QA configure it: the whole list, saved as a new version. */
export const checklistBody = z.strictObject({
  items: z
    .array(
      z.strictObject({
        id: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$/, 'letters, digits, dot, dash or underscore, at most 40'),
        clause: words(200),
        lookFor: words(1000),
        keywords: z.array(words(80)).max(20).default([]),
      }),
    )
    .min(1, 'a checklist needs at least one item')
    .max(100)
    .refine((items) => new Set(items.map((i) => i.id)).size === items.length, { message: 'item ids must be unique' }),
});
