import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Custom search attributes that make runs findable in the Web UI. Never put PHI in one. */
export const EntityType = defineSearchAttributeKey('EntityType', SearchAttributeType.KEYWORD);
export const EntityId = defineSearchAttributeKey('EntityId', SearchAttributeType.KEYWORD);
export const Stage = defineSearchAttributeKey('Stage', SearchAttributeType.KEYWORD);
export const Assignees = defineSearchAttributeKey('Assignees', SearchAttributeType.KEYWORD_LIST);
export const DueAt = defineSearchAttributeKey('DueAt', SearchAttributeType.DATETIME);

export const ALL_SEARCH_ATTRIBUTES = [EntityType, EntityId, Stage, Assignees, DueAt];
