// Drives @segment/analytics-node, configured only with Tessera's URL as its host, through every call it has.
// Usage: node analytics-node.mjs <tesseraUrl> <writeKey> <runId>
// Prints one JSON line: the batches the SDK put on the wire, Tessera's answers, and any SDK error.
import { createRequire } from 'node:module'
import { Analytics } from '@segment/analytics-node'

const [tesseraUrl, writeKey, runId] = process.argv.slice(2)
if (!tesseraUrl || !writeKey || !runId) {
  console.error('usage: node analytics-node.mjs <tesseraUrl> <writeKey> <runId>')
  process.exit(2)
}

const userId = `user-${runId}`
const anonymousId = `anon-${runId}`
const report = { library: createRequire(import.meta.url)('@segment/analytics-node/package.json').version, requests: [], errors: [] }

// Small batches and no retries: several /v1/batch requests, and a failure shows at once instead of being retried away.
const analytics = new Analytics({ writeKey, host: tesseraUrl.replace(/\/$/, ''), flushAt: 3, flushInterval: 250, maxRetries: 0 })
analytics.on('http_request', (r) => report.requests.push({ url: r.url, method: r.method, headers: r.headers, body: JSON.parse(r.body) }))
analytics.on('http_response', (r) => { report.requests.find((q) => q.response === undefined).response = { status: r.status } })
analytics.on('error', (e) => report.errors.push(String(e?.reason ?? e?.code ?? e)))

analytics.identify({ userId, anonymousId, traits: { email: `ada-${runId}@example.com`, name: 'Ada Lovelace', plan: 'pro', logins: 3 }, context: { ip: '203.0.113.7' } })
analytics.track({
  userId,
  event: 'Order Completed',
  properties: { orderId: `order-${runId}`, revenue: 42.5, currency: 'EUR', products: [{ sku: 'p-42', quantity: 2 }] },
  context: { campaign: { source: 'newsletter' } },
})
analytics.track({ anonymousId, event: 'Product Viewed', properties: { sku: 'p-42' }, timestamp: new Date('2026-01-15T10:00:00.000Z') })
analytics.page({ userId, category: 'Docs', name: 'Pricing', properties: { url: 'https://example.com/pricing', title: 'Pricing' } })
analytics.screen({ userId, name: 'Home', properties: { variant: 'dark' } })
analytics.group({ userId, groupId: `acme-${runId}`, traits: { name: 'Acme Inc', employees: 42 } })
analytics.alias({ userId, previousId: anonymousId })

await analytics.flush()
await analytics.closeAndFlush({ timeout: 10000 })
console.log(JSON.stringify(report))
