// The HTML report in a real browser: Debian's Chromium driven by playwright-core opens the page
// served on 127.0.0.1, the charts render (checked in the DOM: one bar per value, bar heights
// proportional to the values), nothing but the page itself is requested, and a screenshot is saved
// to test-artifacts/eval-report.png.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_FLAGS, CHROMIUM_PATH } from '@vlit/test-kit/node';
import { dataQualitySection, renderHtmlReport } from './html.js';
import { makeRuns, seedQualityReports } from './fixtures.js';

const artifacts = join(dirname(fileURLToPath(import.meta.url)), '../../test-artifacts');

let server: Server;
let browser: Browser;
let url: string;

beforeAll(async () => {
  const html = await renderHtmlReport({
    title: 'Vlit evaluation: LLaVA tuned on three datasets',
    runs: await makeRuns(),
    dataQuality: dataQualitySection(seedQualityReports(), { title: 'Data quality (the review’s figures)' }),
  });
  mkdirSync(artifacts, { recursive: true });
  writeFileSync(join(artifacts, 'eval-report.html'), html);
  server = createServer((req, res) => {
    if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(html);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_FLAGS] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

describe('HTML report in headless Chromium', () => {
  it('renders every chart with one bar per value, requests nothing else, and is screenshotted', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const requested: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(url, { waitUntil: 'load' });

    const charts = await page.$$eval('figure.chart', (figs) =>
      figs.map((f) => ({
        id: f.getAttribute('data-chart'),
        svgs: f.querySelectorAll('svg').length,
        bars: Array.from(f.querySelectorAll('g.mark-rect path')).map((p) => ({
          label: p.getAttribute('aria-label') ?? '',
          height: (p as SVGGraphicsElement).getBBox().height,
          width: (p as SVGGraphicsElement).getBBox().width,
        })),
        texts: Array.from(f.querySelectorAll('text')).map((t) => t.textContent ?? ''),
        rendered: (f.querySelector('svg') as SVGSVGElement).getBoundingClientRect().width,
      })),
    );
    expect(charts.map((c) => c.id)).toEqual([
      'dimensions-seed-bench-mini',
      'metrics-vqav2-mini',
      'metrics-coco-captions-mini',
      'metrics-pope-popular',
      'data-quality',
    ]);
    for (const c of charts) {
      expect(c.svgs, c.id!).toBe(1);
      expect(c.rendered, c.id!).toBeGreaterThan(100);
      for (const b of c.bars) expect(b.width, `${c.id} ${b.label}`).toBeGreaterThan(0);
    }

    // Dimensions: 3 runs x (Overall + 9 dimensions); accuracies 25 / 50 / 75 % -> heights 1 : 2 : 3.
    const dims = charts[0];
    expect(dims.bars).toHaveLength(30);
    for (const code of ['Overall', 'SU', 'II', 'IA', 'IL', 'IC', 'SR', 'IIR', 'VR', 'TR']) expect(dims.texts).toContain(code);
    const value = (label: string) => Number(/accuracy \(%\): ([\d.]+)/.exec(label)?.[1]);
    const unit = dims.bars[0].height / value(dims.bars[0].label);
    for (const b of dims.bars) expect(Math.abs(b.height - unit * value(b.label)), b.label).toBeLessThan(0.5);
    expect(new Set(dims.bars.map((b) => value(b.label)))).toEqual(new Set([25, 50, 75]));

    // Captions: 3 runs x 6 metrics; POPE: 3 x 5; VQA: 3 x 1; data quality: 4 datasets x 9 metrics.
    expect(charts[1].bars).toHaveLength(3);
    expect(charts[2].bars).toHaveLength(18);
    expect(charts[3].bars).toHaveLength(15);
    expect(charts[4].bars).toHaveLength(36);
    expect(charts[4].texts.some((t) => t.includes('Balance (lower is better)'))).toBe(true);

    const header = await page.$eval('section.benchmark[data-benchmark="seed-bench-mini"] > table', (t) =>
      Array.from(t.querySelectorAll('th')).map((th) => th.textContent),
    );
    expect(header).toEqual(['Run', 'Overall', 'SU', 'II', 'IA', 'IL', 'IC', 'SR', 'IIR', 'VR', 'TR']);

    expect(requested).toEqual([url]);
    expect(errors).toEqual([]);
    const shot = join(artifacts, 'eval-report.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = readFileSync(shot);
    expect([...png.subarray(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    expect(png.length).toBeGreaterThan(20_000);
  }, 60_000);
});
