// The page's script, bundled by browser-sdk.mjs with esbuild: analytics-next exactly as an app installs it from npm,
// loaded with Tessera as its CDN (for the settings) and, through those settings, as its API host.
import { AnalyticsBrowser } from '@segment/analytics-next'

window.runSdk = async ({ writeKey, cdnURL, runId, batching, expected }) => {
  const integrations = batching
    ? { 'Segment.io': { deliveryStrategy: { strategy: 'batching', config: { size: expected, timeout: 1000 } } } }
    : {}
  const [analytics] = await AnalyticsBrowser.load({ writeKey, cdnURL }, { integrations, disableClientPersistence: true })

  const userId = `user-${runId}`
  const calls = [
    // Before identify: the SDK's own anonymousId only; alias then links it to the user id (previousId is the anonymousId).
    () => analytics.track('Product Viewed', { sku: 'p-42' }),
    () => analytics.alias(userId),
    () => analytics.identify(userId, { email: `ada-${runId}@example.com`, name: 'Ada Lovelace', plan: 'pro', logins: 3 }),
    () => analytics.track('Order Completed', { orderId: `order-${runId}`, revenue: 42.5, currency: 'EUR', products: [{ sku: 'p-42', quantity: 2 }] },
      { context: { campaign: { source: 'newsletter' } } }),
    () => analytics.page('Docs', 'Pricing', { title: 'Pricing' }),
    () => analytics.screen('Home', { variant: 'dark' }),
    () => analytics.group(`acme-${runId}`, { name: 'Acme Inc', employees: 42 }),
  ]
  if (calls.length !== expected) throw new Error(`the test expects ${expected} calls, the page makes ${calls.length}`)

  // One after the other, so that identify's userId is on the calls after it.
  const events = []
  for (const call of calls) {
    const ctx = await call()
    events.push({ type: ctx.event.type, messageId: ctx.event.messageId, failed: ctx.failedDelivery()?.reason?.toString() ?? null })
  }
  return { events, anonymousId: analytics.user().anonymousId() }
}
