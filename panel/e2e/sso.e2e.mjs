// Browser test of single sign-on: Debian's chromium signs in to the panel
// through a real OpenID provider's own login page (oidc-provider, started by
// test-support/tests/all/e2e_panel.rs with a real stack), deploys a function
// and sees it; a second provider user sees none of it. Screenshots go to
// $ARTIFACTS.

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
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
const problems = [];
const step = (what) => console.log(`- ${what}`);

/** A new browser (its own cookies) with one page. */
async function person() {
  const context = await browser.newContext({ viewport: { width: 1100, height: 850 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`page error: ${e}`));
  page.on("console", (m) => {
    // Ours only (the provider's page loads fonts from the internet). At
    // start the panel asks whether this browser has a session: a 401 means
    // no; bob's look at alice's function is a 404.
    const url = m.location().url ?? "";
    const expected = /status of (401|404)/.test(m.text());
    if (m.type() === "error" && url.startsWith(base) && !expected) problems.push(`console: ${m.text()} (${url})`);
  });
  page.setDefaultTimeout(15000);
  return { context, page, shot: (name) => page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true }) };
}

/** Signs in through the provider's own pages as `login`. */
async function signIn({ page, shot }, login, name) {
  await page.goto(`${base}/#/login`);
  await page.click("a:text-is('Sign in with Test SSO')");
  // The provider's page, on the provider's origin.
  await page.waitForSelector("input[name=login]");
  if (new URL(page.url()).origin === new URL(base).origin) throw new Error("the login page is not the provider's");
  await shot(`${name}-provider`);
  await page.fill("input[name=login]", login);
  await page.fill("input[name=password]", "any password");
  await page.click("button[type=submit]");
  await page.waitForSelector("h1:text-is('Functions')");
  await page.waitForSelector(`.who:text-is('${login}')`);
}

try {
  const alice = await person();
  step("the login page offers the provider");
  await alice.page.goto(`${base}/#/login`);
  await alice.page.waitForSelector("a:text-is('Sign in with Test SSO')");
  await alice.shot("sso-01-login");

  step("alice signs in through the provider's login page");
  await signIn(alice, "alice", "sso-02");
  await alice.shot("sso-03-functions");

  step("alice creates and deploys a function, and sees it");
  await alice.page.fill("input[name=name]", "alices");
  await alice.page.click("button:text-is('Create')");
  await alice.page.waitForSelector("h1:text-is('alices')");
  await alice.page.setInputFiles("input[name=module]", env("WASM"));
  await alice.page.click("button:text-is('Upload and deploy')");
  await alice.page.waitForSelector("text=v1 · public");
  await alice.page.goto(`${base}/#/functions`);
  await alice.page.waitForSelector("a:text-is('alices')");
  await alice.shot("sso-04-deployed");

  step("a new tab of the same browser is signed in (the session's cookie)");
  const tab = await alice.context.newPage();
  await tab.goto(`${base}/#/functions`);
  await tab.waitForSelector("a:text-is('alices')");
  await tab.close();

  step("bob, another provider user, sees none of it");
  const bob = await person();
  await signIn(bob, "bob", "sso-05");
  await bob.page.waitForSelector("h1:text-is('Functions')");
  if ((await bob.page.$("a:text-is('alices')")) !== null) throw new Error("bob sees alice's function");
  await bob.page.goto(`${base}/#/functions/alices`);
  await bob.page.waitForSelector("p.error");
  const notFound = await bob.page.textContent("p.error");
  if (!/not found/i.test(notFound)) throw new Error(`expected a not-found message, got ${notFound}`);
  await bob.shot("sso-06-isolation");

  step("logging out ends the session: a new tab is not signed in");
  await alice.page.click("button:text-is('Log out')");
  await alice.page.waitForSelector("a:text-is('Sign in with Test SSO')");
  const after = await alice.context.newPage();
  await after.goto(`${base}/#/functions`);
  await after.waitForSelector("a:text-is('Sign in with Test SSO')");
  await alice.shot("sso-07-logged-out");

  if (problems.length) throw new Error(`the page reported problems:\n${problems.join("\n")}`);
  console.log("single sign-on in the browser: all steps passed");
} finally {
  await browser.close();
}
