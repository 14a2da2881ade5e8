// Runs @segment/analytics-next in headless Chromium on a page served from another origin than Tessera, so every
// request it makes to Tessera is cross-origin (CORS, preflights for its Authorization header).
// Usage: node browser-sdk.mjs <tesseraUrl> <writeKey> <runId> <standard|batching>
// Needs TESSERA_CHROMIUM (a Chromium binary). Prints one JSON line: what the page reported, every request to
// Tessera with its answer, failed requests and console errors.
import { createServer } from 'node:http'
import { readFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { build } from 'esbuild'
import { chromium } from 'playwright-core'

const [tesseraUrl, writeKey, runId, mode] = process.argv.slice(2)
if (!tesseraUrl || !writeKey || !runId || !['standard', 'batching'].includes(mode)) {
  console.error('usage: node browser-sdk.mjs <tesseraUrl> <writeKey> <runId> <standard|batching>')
  process.exit(2)
}
const executablePath = process.env.TESSERA_CHROMIUM
if (!executablePath) {
  console.error('TESSERA_CHROMIUM is not set: source scripts/deps/chromium.sh first')
  process.exit(2)
}

const expected = 7
const here = new URL('.', import.meta.url).pathname
const tessera = new URL(tesseraUrl)
const report = { library: createRequire(import.meta.url)('@segment/analytics-next/package.json').version, requests: [], failed: [], console: [] }

const bundle = await build({
  entryPoints: [join(here, 'browser/entry.js')],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'chrome120',
  write: false,
  logLevel: 'error',
})
const html = await readFile(join(here, 'browser/index.html'))

// The shop's own server: "localhost" and its own port, while Tessera is 127.0.0.1 on another port.
const site = createServer((req, res) => {
  if (req.url === '/bundle.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle.outputFiles[0].contents)
  } else if (req.url === '/' || req.url.startsWith('/?')) {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html)
  } else if (req.url === '/favicon.ico') {
    res.writeHead(204).end()
  } else {
    res.writeHead(404).end()
  }
})
await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve))
const siteOrigin = `http://localhost:${site.address().port}`

const profile = await mkdtemp(join(tmpdir(), 'tessera-chromium-'))
// A fresh profile each run (Playwright passes it as --user-data-dir), so no earlier run's cookies or storage leak in.
const browser = await chromium.launchPersistentContext(profile, {
  executablePath,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
})
let exitCode = 0
try {
  const page = browser.pages()[0] ?? await browser.newPage()
  page.on('console', (m) => { if (m.type() === 'error') report.console.push(`${m.text()} (${m.location()?.url ?? ''})`) })
  page.on('pageerror', (e) => report.console.push(`pageerror: ${e.message}`))
  page.on('requestfailed', (r) => { if (r.url().startsWith(tessera.origin)) report.failed.push({ url: r.url(), method: r.method(), error: r.failure()?.errorText }) })
  page.on('response', async (response) => {
    const request = response.request()
    if (!request.url().startsWith(tessera.origin)) return
    const headers = await request.allHeaders()
    const body = request.postData()
    report.requests.push({
      url: request.url(),
      method: request.method(),
      headers: { 'content-type': headers['content-type'] ?? null, authorization: headers.authorization ?? null },
      body: body ? JSON.parse(body) : null,
      response: {
        status: response.status(),
        allowOrigin: (await response.allHeaders())['access-control-allow-origin'] ?? null,
        body: body ? null : await response.text().catch(() => null),
      },
    })
  })

  await page.goto(`${siteOrigin}/`)
  report.pageOrigin = new URL(page.url()).origin
  report.page = await page.evaluate((args) => window.runSdk(args), { writeKey, cdnURL: tessera.origin, runId, batching: mode === 'batching', expected })

  // The calls resolve once handed to the Segment.io plugin; wait until Tessera has answered for every message.
  const delivered = () => report.requests
    .filter((r) => r.method === 'POST' && r.response.status < 300 && r.body)
    .reduce((n, r) => n + (Array.isArray(r.body.batch) ? r.body.batch.length : 1), 0)
  const deadline = Date.now() + 20000
  while (delivered() < expected && report.failed.length === 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  // A moment more, so that a duplicate or a retry would show up too.
  await new Promise((resolve) => setTimeout(resolve, 300))
} catch (e) {
  report.error = String(e?.stack ?? e)
  exitCode = 1
} finally {
  await browser.close()
  site.close()
  await rm(profile, { recursive: true, force: true })
}
console.log(JSON.stringify(report))
process.exit(exitCode)
