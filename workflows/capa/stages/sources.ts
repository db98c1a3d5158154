import { sourceKey, type CapaState, type LinkSourcesArgs } from '../../../common/capa';
import { dedupeSources, type CapaCase } from '../capa-case';
import { grantProof } from '../proof';
import { latestPassed } from '../tasks';
import { FINISHED } from '../validators';
import { closureHashOf } from './effectiveness';

/**
 * More source records name this CAPA: a person through the API (the Update, with a grant; the CAPA's owner or QA),
 * or another process by signal (believed only as far as Postgres bears it out). Those already linked are ignored.
 * Once the closure record is hashed for QA to sign, a new source changes that hash.
 */
export async function linkSources(c: CapaCase, args: LinkSourcesArgs): Promise<CapaState> {
  const s = c.state;
  const added = dedupeSources(args.sources.filter((src) => !s.sources.some((x) => sourceKey(x) === sourceKey(src))));
  if (!added.length || FINISHED.includes(s.stage)) return s;
  const { actor, grant } = args;
  const proof =
    actor && grant
      ? grantProof('capa.link_sources', { actor, grant, sources: args.sources }, { roles: ['qa_manager'], holds: s.owner ? [s.owner] : [] })
      : { kind: 'process_link' as const, by: args.by, sources: added };
  const by = actor?.username ?? args.by;
  return c.change(
    () => {
      s.sources.push(...added);
      const passed = latestPassed(s);
      if (c.grants && passed && s.closureContentHash) s.closureContentHash = closureHashOf(c, passed);
    },
    () => ({
      audit: { action: 'capa.sources_linked', ...(actor ? { actor } : { by }), details: { sources: added.map(sourceKey) } },
      sources: { sources: added, by },
    }),
    actor?.userId,
    proof,
  );
}
