// Browser CPU training speed beside native (make bench-browser): the demo
// page's presets (web/presets.json: the request and the page's sentences)
// trained in headless Chromium on the CPU backend, with graft's
// WebAssembly SIMD128 kernels and with the portable Go kernels, and the
// same request natively (nativebench) on 2 threads and on 1. Each figure
// is the best of ROUNDS runs (default 3), taken in turn so that a busy
// machine slows every kind alike. Needs bindings/js/dist (make
// wasm-browser), /usr/bin/chromium and test/'s playwright-core. It sits
// outside test/, where `node --test` would run it as a test.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const { chromium } = createRequire(new URL("test/package.json", import.meta.url))("playwright-core");
const root = new URL("../../", import.meta.url).pathname;
const rounds = Number(process.env.ROUNDS || 3);
const presetNames = (process.env.PRESETS || "prompt-tuning,lora").split(",");
const tmp = mkdtempSync(join(tmpdir(), "graft-bench-"));
let server, browser;
try {
  for (const pkg of ["examples/browser", "examples/browser/nativebench"]) {
    execFileSync("go", ["build", "-o", join(tmp, pkg.split("/").pop()), "./" + pkg], { cwd: root, stdio: "inherit" });
  }
  server = spawn(join(tmp, "browser"), ["-addr", "127.0.0.1:0", "-root", root], { env: { ...process.env, GRAFT_DEMO_QUIET: "1" } });
  const base = await new Promise((resolve, reject) => {
    let out = "";
    server.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/graft demo: (http:\/\/\S+)/);
      if (m) resolve(m[1]);
    });
    server.on("exit", (code) => reject(new Error(`demo server exited with ${code}`)));
  });
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-quic", "--no-first-run"] });
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${base}?backend=cpu`);
  await page.waitForFunction(() => window.demo.presets !== null || window.demo.phase === "error", null, { timeout: 120_000 });
  const best = {};
  const keep = (key, tps, extra) => {
    if (!best[key] || tps > best[key].tokensPerSec) best[key] = { tokensPerSec: Math.round(tps), ...extra };
  };
  for (let round = 0; round < rounds; round++) {
    for (const name of presetNames) {
      for (const simd of [true, false]) {
        const res = await page.evaluate(async ([name, simd]) => {
          const p = window.demo.presets;
          const preset = p.personalize.find((x) => x.value === name);
          const req = { ...preset.request, examples: p.examples };
          if (preset.initTextFromFirstExample) req.initText = p.examples[0];
          const g = await window.demo.Graft.load({ modelURL: "/models/stories260K/stories260K.gguf", backend: "cpu", simd });
          try {
            const r = await g.train(req);
            return { kernels: g.info.kernels, tokensPerSec: r.tokensPerSec, loss: [r.losses[0], r.losses.at(-1)] };
          } finally {
            g.dispose();
          }
        }, [name, simd]);
        keep(`${name} chromium ${res.kernels}`, res.tokensPerSec, { loss: res.loss });
      }
      for (const threads of [2, 1]) {
        const line = execFileSync(join(tmp, "nativebench"), ["-root", root, "-preset", name, "-threads", String(threads)], { encoding: "utf8" });
        const r = JSON.parse(line);
        keep(`${name} native ${threads} threads (${r.kernels})`, r.tokensPerSec, { loss: r.loss });
      }
    }
  }
  for (const name of presetNames) {
    const native2 = Object.entries(best).find(([k]) => k.startsWith(`${name} native 2`))[1].tokensPerSec;
    for (const [key, v] of Object.entries(best)) {
      if (key.startsWith(name + " ")) console.log(`${key.padEnd(44)} ${String(v.tokensPerSec).padStart(7)} tokens/s  ${(v.tokensPerSec / native2).toFixed(3)}x native on 2 threads  loss ${v.loss.map((x) => x.toFixed(4)).join(" -> ")}`);
    }
  }
} finally {
  await browser?.close();
  server?.kill();
  rmSync(tmp, { recursive: true, force: true });
}
