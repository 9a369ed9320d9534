import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { getAddress, type Address } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setApp } from "../../lib/app.js";
import { showGroup } from "../../lib/use-cases/operator.js";
import { startLocalServer } from "../../scripts/local-server.js";
import { LAPTOP, launchBrowser, openPage, PHONE, walletOf } from "../support/browser.js";
import { startLocalChain, type LocalChain } from "../support/evm.js";
import { ADMIN_KEY, realDeployment, startRealInstance, type RealXmtpInstance } from "../support/test-app.js";
import { clearFaults, createPerson, injectFaults, type Person } from "../support/xmtp-people.js";

// The dashboard in headless Chromium over the real stack: the local server (vercel.json's routes, public/ assets),
// real Redis, the real XMTP client against the local node, anvil (chain 8453) for the token rule, a test wallet.
const ARTIFACTS = join(import.meta.dirname, "..", "artifacts");
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const CHAIN = 8453;
const admin = privateKeyToAccount(generatePrivateKey());

let base: string;
let closeServer: () => Promise<void>;
let browser: Browser;
let chain: LocalChain;
let instance: RealXmtpInstance;
let appVersion: string;
let holder: Person;
let token: Address;
let notAToken: Address;

beforeAll(async () => {
  const server = await startLocalServer();
  base = server.url;
  closeServer = () => server.close();
  chain = await startLocalChain(CHAIN);
  token = await chain.deploy("TestERC20", ["Gate Token", "GATE", 18]);
  notAToken = await chain.deploy("Reverter");
  holder = await createPerson();
  await chain.write(token, "TestERC20", "mint", [holder.address, 50n * 10n ** 18n]);
  const deployment = realDeployment({ PUBLIC_URL: base, ADMIN_ADDRESSES: admin.address, [`RPC_URL_${CHAIN}`]: chain.url, CRON_SECRET: "cron-secret-for-tests-0123" });
  appVersion = deployment.appVersion;
  instance = await startRealInstance(deployment);
  setApp(instance.app);
  browser = await launchBrowser();
  mkdirSync(ARTIFACTS, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  setApp(undefined);
  await instance?.close();
  await holder?.close();
  await chain?.stop();
  await closeServer?.();
});

/** Waits until the dashboard shows `view` (it sets main[data-view] when a view is drawn). */
async function view(page: Page, name: string): Promise<void> {
  await page.locator(`main[data-view="${name}"]`).waitFor({ timeout: 30_000 });
  await page.waitForFunction(() => !document.querySelector("main")?.textContent?.includes("Loading…"), undefined, { timeout: 30_000 });
}

/** axe-core's serious and critical violations on the page as it is (run through the DevTools protocol: the CSP stays on). */
async function axeProblems(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(c: unknown, o: unknown): Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe;
    return axe.run(document, { resultTypes: ["violations"] });
  });
  return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

/** Checks the page with axe and saves its screenshot as test/artifacts/admin-<name>-<width>.png. */
async function inspect(page: Page, name: string): Promise<void> {
  expect(await axeProblems(page), name).toEqual([]);
  // The toast (a live region fixed to the viewport) would float over the middle of a full-page screenshot.
  await page.locator("#toast").evaluate((node) => (node.textContent = ""));
  expect(await page.locator("main").innerText(), name).not.toMatch(/\bnull\b|\bundefined\b|NaN|\[object /);
  const width = page.viewportSize()?.width ?? 0;
  await page.screenshot({ path: join(ARTIFACTS, `admin-${name}-${width}.png`), fullPage: true });
}

async function signIn(page: Page): Promise<void> {
  await page.goto(`${base}/admin`);
  await page.getByRole("button", { name: "Connect wallet and sign in" }).click();
  await view(page, "groups");
}

describe("the dashboard in headless Chromium", () => {
  it("refuses a stranger's wallet, in words, and signs an admin in by keyboard", async () => {
    const stranger = await openPage(browser, walletOf(privateKeyToAccount(generatePrivateKey())));
    try {
      const res = await stranger.page.goto(`${base}/admin`);
      expect(res?.headers()["content-security-policy"]).toContain("script-src 'self'");
      await inspect(stranger.page, "sign-in");
      await stranger.page.getByRole("button", { name: "Connect wallet and sign in" }).click();
      await stranger.page.locator("#sign-in-status[data-state='error']").waitFor();
      expect(await stranger.page.locator("#sign-in-status").textContent()).toMatch(/is not an admin of this deployment/);
      expect(await stranger.context.cookies()).toEqual([]);
      expect(stranger.errors.filter((e) => !/status of 40[13]/.test(e))).toEqual([]);
    } finally {
      await stranger.close();
    }

    const phone = await openPage(browser, walletOf(admin), PHONE);
    try {
      await phone.page.goto(`${base}/admin`);
      await phone.page.locator("#sign-in").waitFor();
      // Keyboard only: the skip link, then the sign-in button.
      for (let i = 0; i < 5 && !(await phone.page.evaluate(() => document.activeElement?.id === "sign-in")); i++) await phone.page.keyboard.press("Tab");
      expect(await phone.page.evaluate(() => document.activeElement?.id)).toBe("sign-in");
      await phone.page.keyboard.press("Enter");
      await view(phone.page, "groups");
      const [cookie] = await phone.context.cookies();
      expect(cookie).toMatchObject({ name: "__Host-tg_admin", httpOnly: true, secure: true, sameSite: "Strict" });
      // No script can read it.
      expect(await phone.page.evaluate(() => document.cookie)).toBe("");
    } finally {
      await phone.close();
    }
  });

  it("creates a token-gated group with the builder, runs it, and signs out — on a laptop, then on a phone", async () => {
    const desk = await openPage(browser, walletOf(admin), LAPTOP);
    await desk.context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
    desk.page.on("dialog", (dialog) => void dialog.accept());
    const { page } = desk;
    try {
      await signIn(page);
      await inspect(page, "groups-empty");

      // The builder: a contract that is no token gets the create check's words next to the contract field.
      await page.getByRole("link", { name: "New group" }).first().click();
      await view(page, "new");
      await page.getByLabel("Name").fill("Gate holders");
      await page.getByLabel("Description").fill("For people who hold GATE.");
      await page.getByRole("button", { name: "Add a rule" }).click();
      const chainPicker = page.getByLabel("Chain (only chains with an RPC configured)");
      expect(await chainPicker.locator("option").allTextContents()).toEqual(["Base (8453)"]);
      await page.getByLabel("Token contract").fill(notAToken);
      await page.getByLabel("Minimum balance (whole tokens)").fill("10");
      await inspect(page, "new-group");
      // Checked on the way, before anything is created…
      await page.getByRole("button", { name: "Check with the chain" }).click();
      const tokenField = page.getByLabel("Token contract");
      await expect.poll(() => tokenField.getAttribute("aria-invalid")).toBe("true");
      const describedBy = (await tokenField.getAttribute("aria-describedby"))!.split(" ")[0]!;
      expect(await page.locator(`#${describedBy}`).textContent()).toMatch(/balanceOf|decimals|does not behave like/);
      expect((await (await fetch(`${base}/api/groups`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).json()) as { total: number }).toMatchObject({ total: 0 });
      // …and by the create itself.
      await page.getByLabel("Minimum balance (whole tokens)").fill("11");
      await page.getByRole("button", { name: "Create group" }).click();
      await page.locator(`#${describedBy}`).waitFor();
      expect(await page.locator(`#${describedBy}`).textContent()).toMatch(/balanceOf|decimals|does not behave like/);
      await inspect(page, "new-group-error");

      // The right token: what the chain says, and the join page's words, before creating.
      await tokenField.fill(token);
      await page.getByLabel("Minimum balance (whole tokens)").fill("10");
      await page.getByRole("button", { name: "Check with the chain" }).click();
      await page.locator("#rules-preview", { hasText: "People will read: Hold at least 10 GATE on Base" }).waitFor();
      expect(await page.locator(".chain-says").textContent()).toBe("The chain says: GATE, 18 decimals");
      expect(await tokenField.getAttribute("aria-invalid")).toBeNull();
      await inspect(page, "new-group-checked");
      await page.getByRole("button", { name: "Create group" }).click();
      await view(page, "groups");
      await page.locator("#link-box .qr").waitFor();
      expect(await page.locator("h1").textContent()).toBe("Gate holders");
      expect(await page.locator("main").textContent()).toContain("Hold at least 10 GATE on Base");
      const joinUrl = await page.locator("#join-url").inputValue();
      expect(joinUrl).toMatch(new RegExp(`^${base}/join/`));
      await page.getByRole("button", { name: "Copy link" }).click();
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(joinUrl);
      const groupId = new URL(page.url()).hash.split("/")[2]!;

      // The holder joins through the link in a second page, with their own wallet.
      const person = await openPage(browser, walletOf(privateKeyToAccount(holder.key)), PHONE);
      try {
        await person.page.goto(joinUrl);
        await person.page.getByRole("button", { name: "Connect wallet and join" }).click();
        await person.page.locator("#status[data-state='joined']").waitFor({ timeout: 60_000 });
      } finally {
        await person.close();
      }
      expect(await holder.memberInboxIds(groupId)).toContain(holder.inboxId);

      // The member on the group page; the CSV.
      await page.reload();
      await view(page, "groups");
      const row = page.locator("#members tr", { hasText: holder.address.toLowerCase() });
      await row.waitFor();
      expect(await row.textContent()).toContain("join page");
      expect(await row.textContent()).toContain("checked daily");
      const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
      const csv = readFileSync(await download.path(), "utf8");
      expect(csv.split("\n")[0]).toBe("address,joinedAt,via,exempt,inboxId");
      expect(csv).toContain(`${holder.address.toLowerCase()},`);
      expect(csv).toContain(holder.inboxId);

      // A message from the backend.
      const box = page.getByLabel("Message to the group (sent by the backend wallet)");
      await box.fill("Welcome, holders");
      await page.getByRole("button", { name: "Send" }).click();
      await page.locator("#message-list li", { hasText: "Welcome, holders" }).waitFor({ timeout: 30_000 });
      await inspect(page, "group");

      // While the network refuses a message, the box says so in words; sending again works.
      await box.fill("Second message");
      await injectFaults(appVersion, [{ method: "SendGroupMessages", when: "before", count: 50 }]);
      await page.getByRole("button", { name: "Send" }).click();
      await expect.poll(() => box.getAttribute("aria-invalid"), { timeout: 60_000 }).toBe("true");
      const boxError = (await box.getAttribute("aria-describedby"))!.split(" ")[0]!;
      expect(await page.locator(`#${boxError}`).textContent()).toMatch(/try again/i);
      await clearFaults(appVersion);
      await page.getByRole("button", { name: "Send" }).click();
      // libxmtp keeps a refused message queued and may publish it with the next send: one or two copies, never none.
      await page.locator("#message-list li", { hasText: "Second message" }).first().waitFor({ timeout: 30_000 });

      // Before saving a stricter rule: who would lose access (nothing is changed).
      const rulesBefore = (await showGroup(instance.app, groupId)).rules;
      await page.getByRole("link", { name: "Edit group" }).click();
      await page.getByLabel("Minimum balance (whole tokens)").fill("1000000");
      await page.getByRole("button", { name: "Preview who would lose access" }).click();
      const loss = page.locator("#loss-preview", { hasText: "would lose access" });
      await loss.waitFor({ timeout: 30_000 });
      expect(await loss.textContent()).toContain("1 of 1 members checked would lose access");
      expect(await loss.textContent()).toContain(holder.address.toLowerCase());
      await inspect(page, "edit-group-preview");
      expect((await showGroup(instance.app, groupId)).rules).toEqual(rulesBefore);
      await page.goto(`${base}/admin#/groups/${groupId}`);
      await view(page, "groups");

      // Remove them: gone from the list, from XMTP, and audited with who did it.
      await row.getByRole("button", { name: `Remove ${holder.address.toLowerCase()}` }).click();
      await view(page, "groups");
      await expect.poll(() => page.locator("#members tr", { hasText: holder.address.toLowerCase() }).count(), { timeout: 30_000 }).toBe(0);
      expect((await showGroup(instance.app, groupId)).members.map((m) => m.address)).not.toContain(holder.address.toLowerCase());
      await page.getByLabel("Show").selectOption("changes");
      const removal = page.locator("#audit-list tr", { hasText: "removed" });
      await removal.waitFor();
      expect(await removal.textContent()).toContain(`${admin.address.toLowerCase().slice(0, 6)}…`);
      await page.getByLabel("Show").selectOption("denials");
      await page.locator("#audit-list", { hasText: "Nothing here yet." }).waitFor();

      // A new link: the old one is a 404 at once.
      await page.getByRole("button", { name: "New link" }).click();
      await expect.poll(() => page.locator("#join-url").inputValue()).not.toBe(joinUrl);
      expect((await fetch(joinUrl)).status).toBe(404);
      expect((await fetch(await page.locator("#join-url").inputValue())).status).toBe(200);
      await page.getByRole("button", { name: "Turn off" }).click();
      await page.locator("#link-state", { hasText: "The join link is off" }).waitFor();
      await page.getByRole("button", { name: "Turn on" }).click();
      await page.locator("#link-state", { hasText: "The join link is on" }).waitFor();

      await page.getByRole("link", { name: "Edit group" }).click();
      await view(page, "groups");
      await page.getByLabel("Token contract").waitFor();
      await inspect(page, "edit-group");

      await page.getByRole("link", { name: "Status" }).click();
      await view(page, "status");
      expect(await page.locator("main").textContent()).toContain("Base (8453)");
      await inspect(page, "status");

      await page.getByRole("link", { name: "Groups" }).click();
      await view(page, "groups");
      expect(await page.locator("tbody tr", { hasText: "Gate holders" }).textContent()).toMatch(/Gate holders\s*0\s*1\s*0\s*on/);
      await inspect(page, "groups");

      // The same pages on a phone, signed in as a second session.
      const phone = await openPage(browser, walletOf(admin), PHONE);
      try {
        await signIn(phone.page);
        await inspect(phone.page, "groups");
        for (const [hash, name, ready] of [[`#/groups/${groupId}`, "group", "#link-box .qr"], [`#/groups/${groupId}/edit`, "edit-group", "#rules"], ["#/new", "new-group", "#group-form"], ["#/status", "status", "#cron"]] as const) {
          await phone.page.goto(`${base}/admin${hash}`);
          await phone.page.locator(ready).waitFor();
          await phone.page.waitForFunction(() => !document.querySelector("main")?.textContent?.includes("Loading…"));
          // Nothing wider than the phone.
          expect(await phone.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
          await inspect(phone.page, name);
        }
        // The only failed request is the first "who is signed in?" (401) before signing in.
        expect(phone.errors.filter((e) => !/status of 401/.test(e))).toEqual([]);
      } finally {
        await phone.close();
      }

      // A crafted link cannot send the page's requests elsewhere: only a hex group id reaches an API path.
      const asked: string[] = [];
      page.on("request", (r) => asked.push(new URL(r.url()).pathname));
      await page.goto(`${base}/admin#/groups/..%2F..%2Fadmin%2Fsession/edit`);
      await expect.poll(() => asked).toContain("/api/groups");
      await view(page, "groups");
      expect(asked.filter((p) => p !== "/api/groups")).toEqual([]);

      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByRole("button", { name: "Connect wallet and sign in" }).waitFor();
      expect(await desk.context.cookies()).toEqual([]);
      expect((await fetch(`${base}/api/groups`, { headers: { origin: base } })).status).toBe(401);
      // Expected failed requests only: the first "who is signed in?" (401), the create check (400), the refused send (503).
      expect(desk.errors.filter((e) => !/status of (400|401|503)/.test(e))).toEqual([]);
    } finally {
      await desk.close();
    }
  }, 240_000);

  it("keeps a rule the builder does not know as it is when the group is saved", async () => {
    const fresh = () => privateKeyToAccount(generatePrivateKey()).address.toLowerCase();
    const [a, b, c] = [fresh(), fresh(), fresh()];
    const rules = { any: [{ all: [{ type: "allowlist", addresses: [a] }, { type: "allowlist", addresses: [b] }] }, { type: "allowlist", addresses: [c] }] };
    const created = (await (
      await fetch(`${base}/api/create`, { method: "POST", headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" }, body: JSON.stringify({ name: "Nested", rules }) })
    ).json()) as { groupId: string };
    const desk = await openPage(browser, walletOf(admin), LAPTOP);
    try {
      await signIn(desk.page);
      await desk.page.goto(`${base}/admin#/groups/${created.groupId}/edit`);
      await desk.page.locator("#rules").waitFor();
      // The nested "all" is shown as JSON, as it is.
      expect(JSON.parse(await desk.page.getByLabel("Rule as JSON (kept exactly as written)").inputValue())).toEqual(rules.any[0]);
      await desk.page.getByLabel("Name").fill("Nested, renamed");
      await desk.page.getByRole("button", { name: "Save changes" }).click();
      await desk.page.locator("#link-box").waitFor();
      const saved = await showGroup(instance.app, created.groupId);
      expect(saved.name).toBe("Nested, renamed");
      expect(saved.rules).toEqual({ any: [{ all: [{ type: "allowlist", addresses: [a] }, { type: "allowlist", addresses: [b] }] }, { type: "allowlist", addresses: [getAddress(c).toLowerCase()] }] });
    } finally {
      await desk.close();
    }
  }, 120_000);
});
