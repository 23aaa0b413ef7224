// Browser test of the panel against a real control + gateway + worker stack
// (started by test-support/tests/e2e_panel.rs, which passes the addresses in
// the environment). Drives Debian's chromium through playwright-core and saves
// a screenshot of every page to $ARTIFACTS.

import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const base = env("CONTROL_URL");
const artifacts = env("ARTIFACTS");
mkdirSync(artifacts, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
});
const page = await browser.newPage({ viewport: { width: 1100, height: 850 } });
const problems = [];
page.on("pageerror", (e) => problems.push(`page error: ${e}`));
page.on("console", (m) => {
  if (m.type() === "error") problems.push(`console: ${m.text()}`);
});
page.setDefaultTimeout(15000);
const shot = (name) => page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });
const step = (what) => console.log(`- ${what}`);

/** Retries `fn` until it stops throwing (routes reach the gateway, records the database, asynchronously). */
async function eventually(what, fn, ms = 15000) {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > until) throw new Error(`${what}: ${e}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function login(user, password) {
  await page.goto(`${base}/#/login`);
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.waitForSelector("h1:text-is('Functions')");
}

async function tryIt(method, path, body, want) {
  return eventually(`try it ${method} ${path} -> ${want}`, async () => {
    await page.selectOption("select[name=method]", method);
    await page.fill("input[name=path]", path);
    await page.fill("input[name=body]", body);
    await page.click("button:text-is('Send')");
    await page.waitForSelector("pre.response");
    const text = await page.textContent("pre.response");
    if (!text.includes(want)) throw new Error(`got ${text}`);
    return text;
  });
}

async function deploy(file, version) {
  await page.setInputFiles("input[name=module]", file);
  await page.click("button:text-is('Upload and deploy')");
  await page.waitForSelector(`text=v${version} · public`);
  const left = await page.$eval("input[name=module]", (i) => i.files.length);
  if (left !== 0) throw new Error("the file input still holds the deployed file");
}

try {
  step("a wrong password is said in words");
  await page.goto(base);
  await page.fill("input[name=username]", "admin");
  await page.fill("input[name=password]", "not-the-password");
  await page.click("button[type=submit]");
  await page.waitForSelector("text=Wrong username or password.");
  await shot("01-login");

  step("log in");
  await login("admin", env("ADMIN_PASSWORD"));
  await shot("02-functions");

  step("create a function");
  await page.fill("input[name=name]", "web");
  await page.click("button:text-is('Create')");
  await page.waitForSelector("h1:text-is('web')");
  await page.waitForSelector("text=not deployed");

  step("upload and deploy v1 with progress");
  await deploy(env("WASM_V1"), 1);
  await page.waitForSelector("progress");
  await shot("03-function");

  step("invoke it from the page");
  await tryIt("GET", "/world?from=panel", "", "Hello from Olincloud!");
  const callLink = await page.getAttribute("a:text-is('see the call')", "href");
  await page.click("summary:has-text('Response headers')");
  await page.waitForSelector("td:text-is('olin-invocation-id')");
  await shot("04-try-it");

  step("the execution appears");
  await page.click("nav.tabs a:text-is('Executions')");
  await eventually("the call in the executions table", async () => {
    await page.reload();
    await page.waitForSelector("table td a", { timeout: 1000 });
  });
  await shot("05-executions");
  await page.click("table td a >> nth=0");
  await page.waitForSelector("text=Wall time");
  // The response headers hello.c printed, in the call detail.
  await page.waitForSelector("h2:text-is('Response headers')");
  await page.waitForSelector("td:text-is('X-Powered-By')");
  await page.waitForSelector("td:text-is('olincloud-hello')");
  await shot("06-execution");

  step("the functions list shows the call rate");
  await page.goto(`${base}/#/`);
  await page.waitForSelector("th:text-is('Calls (last hour)')");
  await page.waitForSelector("td:text-matches('^[0-9]+ calls?$')");
  await shot("06a-functions-list");
  const callId = callLink.split("/").pop();

  step("deploy v2, then roll back to v1");
  await page.goto(`${base}/#/functions/web`);
  await deploy(env("WASM_V2"), 2);
  await tryIt("POST", "/", "ping", "ping");
  await page.click("button:text-is('Roll back to this')");
  await page.waitForSelector("text=v1 · public");
  await tryIt("GET", "/", "", "Hello from Olincloud!");
  await page.waitForSelector("text=rolled back to v1");
  await shot("07-rolled-back");

  step("usage");
  await page.click("nav.tabs a:text-is('Usage')");
  await page.waitForSelector("dt:text-is('Calls')");
  await page.waitForSelector("figure.chart canvas");
  const charts = await page.$$eval("figure.chart canvas", (c) => c.length);
  if (charts !== 3) throw new Error(`expected 3 usage charts, found ${charts}`);
  await shot("08-usage");

  step("settings on a phone-width screen: secrets stay masked");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click("nav.tabs a:text-is('Settings')");
  await page.fill("form.inline >> nth=0 >> input >> nth=0", "API_KEY");
  await page.check("form.inline >> nth=0 >> input[type=checkbox]");
  await page.fill("form.inline >> nth=0 >> input >> nth=1", "s3cr3t-value");
  await page.click("button:text-is('Set')");
  await page.waitForSelector("td:text-is('API_KEY')");
  if ((await page.content()).includes("s3cr3t-value")) throw new Error("a secret value is shown");
  await page.fill("input[name=rate]", "50");
  await page.fill("input[name=concurrency]", "4");
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/v1/functions/web") && r.request().method() === "PATCH" && r.ok()),
    page.click("button:text-is('Save limits')"),
  ]);
  await page.reload();
  await page.click("nav.tabs a:text-is('Settings')");
  await page.waitForSelector("input[name=concurrency]");
  const saved = [await page.inputValue("input[name=rate]"), await page.inputValue("input[name=burst]"), await page.inputValue("input[name=concurrency]")];
  if (saved.join() !== "50,50,4") throw new Error(`rate and concurrency limits not saved: ${saved}`);
  await shot("09-settings-phone");
  await page.setViewportSize({ width: 1100, height: 850 });

  step("admins manage users: create, disable, enable, reset a password");
  await page.click("header a:text-is('Users')");
  await page.waitForSelector("h1:text-is('Users')");
  await page.fill("input[name=new-username]", "carol");
  await page.fill("input[name=new-password]", "carol-password-1");
  await page.click("button:text-is('Create')");
  const carol = "tr[data-user=carol]";
  await page.waitForSelector(carol);
  const manage = () => page.$eval(`${carol} details`, (d) => (d.open = true));
  await manage();
  await page.click(`${carol} button:text-is('Disable')`);
  await page.waitForSelector(`${carol} td:text-matches('^disabled')`);
  await manage();
  await page.click(`${carol} button:text-is('Enable')`);
  await page.waitForSelector(`${carol} td:text-is('enabled')`);
  await manage();
  await page.fill(`${carol} input[name=reset-password]`, "carol-password-2");
  await page.click(`${carol} button:text-is('Reset password')`);
  await page.waitForSelector("text=carol's password is reset");
  await shot("09a-users");

  step("the audit log shows what happened, filtered");
  await page.click("header a:text-is('Audit log')");
  await page.waitForSelector("td:text-is('user_created')");
  await page.waitForSelector("td:text-is('function_created')");
  await page.fill("input[name=target]", "carol");
  await page.click("button:text-is('Filter')");
  await eventually("only carol's entries", async () => {
    const targets = await page.$$eval("tbody tr td:nth-child(4)", (tds) => tds.map((t) => t.textContent));
    if (targets.length < 4 || targets.some((t) => t !== "carol")) throw new Error(`targets ${targets}`);
  });
  await shot("09b-audit");

  step("another user sees none of it");
  await page.click("button:text-is('Log out')");
  await page.waitForSelector("input[name=username]");
  await login(env("OTHER_USER"), env("OTHER_PASSWORD"));
  await page.waitForSelector(`a:text-is('${env("OTHER_FUNCTION")}')`);
  await page.waitForSelector("p.muted:text-matches('^This month: [0-9,]+ of [0-9,]+ calls')");
  if (await page.$("a:text-is('web')")) throw new Error("another user's function is listed");
  await page.goto(`${base}/#/functions/web`);
  await page.waitForSelector("p.error");
  const notFound = await page.textContent("p.error");
  if (!/no function|not found/i.test(notFound)) throw new Error(`expected a not-found message, got ${notFound}`);
  await shot("10-isolation-function");
  await page.goto(`${base}/#/executions/${callId}`);
  await page.waitForSelector("p.error");
  await shot("11-isolation-execution");
  await page.goto(`${base}/#/functions/web/executions`);
  await page.waitForSelector("p.error");

  step("a user's audit log holds their own entries only, and no Users page");
  if (await page.$("header a:text-is('Users')")) throw new Error("a user is offered the Users page");
  await page.click("header a:text-is('Audit log')");
  await page.waitForSelector("td:text-is('login')");
  const targets = await page.$$eval("tbody tr td:nth-child(4)", (tds) => tds.map((t) => t.textContent));
  if (targets.some((t) => t === "carol" || t === "web")) throw new Error(`another user's entries are listed: ${targets}`);

  step("a user changes their password on their account page");
  await page.click("header a.who");
  await page.fill("input[name=current-password]", env("OTHER_PASSWORD"));
  await page.fill("input[name=new-password]", "bob-password-2");
  await page.fill("input[name=new-password-again]", "bob-password-2");
  await page.click("button:text-is('Change password')");
  await page.waitForSelector("text=Password changed");
  await shot("12-account");

  step("an unknown page is said in words");
  await page.goto(`${base}/#/nowhere`);
  await page.waitForSelector("h1:text-is('Not found')");

  const unexpected = problems.filter((p) => !p.includes("status of 404") && !p.includes("status of 401"));
  if (unexpected.length) throw new Error(`browser problems: ${unexpected.join("; ")}`);
  console.log("panel e2e: ok");
} catch (e) {
  await shot("failure").catch(() => {});
  console.error(`panel e2e failed: ${e.stack ?? e}`);
  console.error(problems.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
