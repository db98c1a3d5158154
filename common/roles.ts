export const ROLES = [
  'admin',
  'qa_manager',
  'document_control',
  'author',
  'reviewer',
  'approver',
  'lab_technician',
  'lab_director',
  'clinician',
  'it_operator',
  // Reviews who read which patient's PHI (HIPAA 164.312(b)); reads no PHI itself.
  'privacy_officer',
] as const;

export type Role = (typeof ROLES)[number];

/** A person as the API has authenticated them; passed into workflow updates so validators can check rights. */
export interface Actor {
  userId: string;
  username: string;
  printedName: string;
  roles: Role[];
}
