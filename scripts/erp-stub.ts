import { createServer, request } from 'node:http';
import { ErpNextStub, seedErp } from '../test/helpers/erpnext-stub';

/**
 * npm run erp:stub — the ERPNext-shaped server the tests use, seeded with a small site, on a fixed port so that
 * labflow can be pointed at it: ERP_URL=http://127.0.0.1:8000 ERP_API_KEY=labflow-key ERP_API_SECRET=labflow-secret.
 * One purchase order names a supplier the site does not have, so the first sync leaves a dead letter to look at.
 * The data lives in memory: stopping the stub (Ctrl-C) forgets it.
 */
const PORT = Number(process.env.ERP_STUB_PORT ?? 8000);

async function main(): Promise<void> {
  const stub = new ErpNextStub();
  seedErp(stub, { suppliers: 10, items: 40, purchaseOrders: 20, receipts: 10 });
  stub.put('Purchase Order', {
    name: 'PUR-ORD-2026-09999',
    supplier: 'Unknown Supplier GmbH',
    transaction_date: '2026-11-02',
    status: 'To Receive and Bill',
    docstatus: 1,
    grand_total: 125,
    currency: 'EUR',
    amended_from: null,
    items: [{ idx: 1, item_code: 'ITM-000001', qty: 10, rate: 12.5, uom: 'Nos' }],
  });
  const inner = new URL(await stub.start());
  // The stub listens on a port of the system's choosing; this forwards a fixed one to it.
  const front = createServer((req, res) => {
    const upstream = request(
      { host: inner.hostname, port: inner.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (err) => res.destroy(err));
    req.pipe(upstream);
  });
  await new Promise<void>((resolve, reject) => {
    front.once('error', reject);
    front.listen(PORT, '127.0.0.1', () => resolve());
  });
  console.log(`ERPNext stub on http://127.0.0.1:${PORT} (${stub.table('Supplier').size} suppliers, ${stub.table('Item').size} items)`);
  console.log(`point labflow at it: ERP_URL=http://127.0.0.1:${PORT} ERP_API_KEY=${stub.apiKey} ERP_API_SECRET=${stub.apiSecret}`);
  const stop = () => {
    front.closeAllConnections();
    front.close();
    void stub.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((err) => {
  console.error(`erp stub: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
