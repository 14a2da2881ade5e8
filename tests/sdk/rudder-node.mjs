// Drives @rudderstack/rudder-sdk-node, configured only with Tessera's URL as its dataPlaneUrl, through every call it has.
// Usage: node rudder-node.mjs <tesseraUrl> <writeKey> <runId>
// Prints one JSON line: the batches the SDK sent, Tessera's answers, and any SDK error.
import { createRequire } from 'node:module'
import { gunzipSync } from 'node:zlib'
import Analytics from '@rudderstack/rudder-sdk-node'

const [tesseraUrl, writeKey, runId] = process.argv.slice(2)
if (!tesseraUrl || !writeKey || !runId) {
  console.error('usage: node rudder-node.mjs <tesseraUrl> <writeKey> <runId>')
  process.exit(2)
}

const userId = `user-${runId}`
const anonymousId = `anon-${runId}`
const report = { library: createRequire(import.meta.url)('@rudderstack/rudder-sdk-node/package.json').version, requests: [], errors: [] }

// The SDK sends through axios; an interceptor sees each request (gzipped by default) and Tessera's answer.
const client = new Analytics(writeKey, {
  dataPlaneUrl: tesseraUrl.replace(/\/$/, ''),
  flushAt: 3,
  flushInterval: 250,
  retryCount: 0,
  logLevel: 'error',
  errorHandler: (e) => report.errors.push(String(e?.message ?? e)),
})
client.axiosInstance.interceptors.response.use(
  (response) => { record(response.config, response.status); return response },
  (error) => { record(error.config, error.response?.status ?? 0); return Promise.reject(error) },
)
function record(config, status) {
  const encoding = config.headers['Content-Encoding'] ?? null
  const raw = Buffer.isBuffer(config.data) ? config.data : Buffer.from(String(config.data))
  const body = JSON.parse((encoding === 'gzip' ? gunzipSync(raw) : raw).toString('utf8'))
  report.requests.push({ url: config.url, method: config.method, headers: { 'content-encoding': encoding }, body, response: { status } })
}

const call = (name, message) => new Promise((resolve) => client[name](message, (err) => {
  if (err) report.errors.push(`${name}: ${err.message ?? err}`)
  resolve()
}))

const calls = [
  call('identify', { userId, anonymousId, traits: { email: `ada-${runId}@example.com`, name: 'Ada Lovelace', plan: 'pro', logins: 3 }, context: { ip: '203.0.113.7' } }),
  call('track', {
    userId,
    event: 'Order Completed',
    properties: { orderId: `order-${runId}`, revenue: 42.5, currency: 'EUR', products: [{ sku: 'p-42', quantity: 2 }] },
    context: { campaign: { source: 'newsletter' } },
  }),
  call('track', { anonymousId, event: 'Product Viewed', properties: { sku: 'p-42' } }),
  call('page', { userId, category: 'Docs', name: 'Pricing', properties: { url: 'https://example.com/pricing', title: 'Pricing' } }),
  call('screen', { userId, name: 'Home', properties: { variant: 'dark' } }),
  call('group', { userId, groupId: `acme-${runId}`, traits: { name: 'Acme Inc', employees: 42 } }),
  call('alias', { userId, previousId: anonymousId }),
]
await client.flush()
await Promise.all(calls)
console.log(JSON.stringify(report))
