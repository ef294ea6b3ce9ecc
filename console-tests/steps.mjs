// What both browser test scripts share: an artifacts directory cleared of old screenshots,
// named steps that print `OK name (ms)` or `FAIL name: why` (with a screenshot of the failure),
// page screenshots, and the closing `PASSED` / `FAILED n` line and exit code.
import { mkdirSync, readdirSync, rmSync } from 'node:fs';

export function artifactsDir(dir) {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) if (f.endsWith('.png')) rmSync(`${dir}/${f}`);
  return dir;
}

export function steps(page, artifacts) {
  let failed = 0;
  return {
    async step(name, fn) {
      const t0 = Date.now();
      try {
        await fn();
        console.log(`OK ${name} (${Date.now() - t0} ms)`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${name}: ${String(e && e.stack || e).split('\n').slice(0, 4).join(' | ')}`);
        await page.screenshot({ path: `${artifacts}/failed-${name.replace(/\W+/g, '-')}.png`, fullPage: true }).catch(() => {});
      }
    },
    shot: name => page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true }),
    async finish(browser) {
      await browser.close();
      console.log(failed ? `FAILED ${failed}` : 'PASSED');
      process.exit(failed ? 1 : 0);
    },
  };
}
