import { sourceKey, type CapaState, type LinkSourcesArgs } from '../../../common/capa';
import { dedupeSources, type CapaCase } from '../capa-case';
import { FINISHED } from '../validators';

/** More source records name this CAPA (a person, or another process by signal); those already linked are ignored. */
export async function linkSources(c: CapaCase, args: LinkSourcesArgs): Promise<CapaState> {
  const s = c.state;
  const added = args.sources.filter((src) => !s.sources.some((x) => sourceKey(x) === sourceKey(src)));
  if (!added.length || FINISHED.includes(s.stage)) return s;
  return c.change(
    () => s.sources.push(...dedupeSources(added)),
    () => ({
      audit: { action: 'capa.sources_linked', by: args.by, details: { sources: added.map(sourceKey) } },
      sources: { sources: added, by: args.by },
    }),
  );
}
