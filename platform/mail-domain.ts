/** The domain of the sender address, used for Message-IDs: 'labflow <labflow@lab.example>' → 'lab.example'. */
export function mailDomainOf(from: string): string {
  const match = /@([A-Za-z0-9.-]+)>?\s*$/.exec(from);
  return match ? match[1] : 'localhost';
}
