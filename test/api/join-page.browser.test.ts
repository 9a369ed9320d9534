import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { hexToString } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { setApp } from "../../lib/app.js";
import { createGroup } from "../../lib/use-cases/create-group.js";
import type { Rules } from "../../lib/shared/rules.js";
import { startLocalServer } from "../../scripts/local-server.js";
import { createTestApp, type TestApp } from "../support/test-app.js";
import { launchBrowser, openPage as openBrowserPage, walletOf, type TestWallet } from "../support/browser.js";

// The join page in a real headless Chromium, served by the local server (real HTTP, real Redis,
// XMTP double), with a test EIP-1193 wallet injected that signs with a local key.
const ARTIFACTS = join(import.meta.dirname, "..", "artifacts");

let t: TestApp;
let base: string;
let closeServer: () => Promise<void>;
let browser: Browser;

beforeAll(async () => {
  const server = await startLocalServer();
  base = server.url;
  closeServer = () => server.close();
  // The page's origin is this deployment's PUBLIC_URL: the sign-in message names it.
  t = createTestApp({ env: { PUBLIC_URL: base, LINK_SERVICE_URL: "", LINK_BASE_URL: "" } });
  setApp(t.app);
  browser = await launchBrowser();
  mkdirSync(ARTIFACTS, { recursive: true });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  setApp(undefined);
  await closeServer?.();
});

async function newGroup(name: string, rules: Rules = { type: "open" }): Promise<{ groupId: string; joinUrl: string }> {
  const created = await createGroup(t.app, { name, description: "Chat for people who hold the token.\nBe kind.", rules });
  return { groupId: created.groupId, joinUrl: created.joinUrl };
}

const openPage = (wallet?: TestWallet) => openBrowserPage(browser, wallet);

async function tapJoin(page: Page, url: string): Promise<string> {
  const response = await page.goto(url);
  expect(response?.status()).toBe(200);
  await page.getByRole("button", { name: "Connect wallet and join" }).click();
  const status = page.locator("#status:not([data-state='working'])");
  await status.waitFor({ state: "visible", timeout: 15_000 });
  return (await status.getAttribute("data-state")) ?? "";
}

describe("join page in headless Chromium", () => {
  it("joins an eligible wallet: connect, sign, and see the way into the group", async () => {
    const { groupId, joinUrl } = await newGroup("Token holders");
    const account = privateKeyToAccount(generatePrivateKey());
    t.network.register(account.address);
    const { page, errors, close } = await openPage(walletOf(account));
    try {
      await page.goto(joinUrl);
      await expect.poll(() => page.locator("h1").textContent()).toBe("Token holders");
      expect(await page.locator(".requirements li").allTextContents()).toEqual(["Anyone may join"]);
      await page.screenshot({ path: join(ARTIFACTS, "join-page-ready.png"), fullPage: true });

      expect(await tapJoin(page, joinUrl)).toBe("joined");
      await expect.poll(() => page.locator("#status .status-title").textContent()).toBe("You're in!");
      expect(await page.getByRole("link", { name: "Open in xmtp.chat" }).getAttribute("href")).toBe(`https://xmtp.chat/conversations/${groupId}`);
      await page.screenshot({ path: join(ARTIFACTS, "join-page-joined.png"), fullPage: true });
      expect(t.network.memberAddresses(groupId)).toContain(account.address.toLowerCase());
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it("shows a denied wallet the reason", async () => {
    const { groupId, joinUrl } = await newGroup("Allowlisted", { type: "allowlist", addresses: [privateKeyToAccount(generatePrivateKey()).address.toLowerCase() as `0x${string}`] });
    const account = privateKeyToAccount(generatePrivateKey());
    t.network.register(account.address);
    const { page, errors, close } = await openPage(walletOf(account));
    try {
      expect(await tapJoin(page, joinUrl)).toBe("denied");
      const text = await page.locator("#status").textContent();
      expect(text).toContain("You can't join with this wallet");
      expect(text).toContain("This wallet is not on the group's allowlist");
      await page.screenshot({ path: join(ARTIFACTS, "join-page-denied.png"), fullPage: true });
      expect(t.network.memberAddresses(groupId)).not.toContain(account.address.toLowerCase());
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it("tells a visitor without a wallet how to get one", async () => {
    const { joinUrl } = await newGroup("No wallet here");
    const { page, errors, close } = await openPage();
    try {
      expect(await tapJoin(page, joinUrl)).toBe("no-wallet");
      expect(await page.locator("#status").textContent()).toContain("No wallet found");
      expect(await page.getByRole("link", { name: "How to get a wallet" }).getAttribute("href")).toBe("https://ethereum.org/en/wallets/find-wallet/");
      // Phones: open this very page in a wallet app's browser.
      const here = new URL(joinUrl);
      expect(await page.getByRole("link", { name: "Open in MetaMask" }).getAttribute("href")).toBe(`https://link.metamask.io/dapp/${here.host}${here.pathname}`);
      expect(await page.getByRole("link", { name: "Open in Coinbase Wallet" }).getAttribute("href")).toBe(`https://go.cb-w.com/dapp?cb_url=${encodeURIComponent(joinUrl)}`);
      await page.screenshot({ path: join(ARTIFACTS, "join-page-no-wallet.png"), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it("says nothing was signed when the person cancels in the wallet, and lets them try again", async () => {
    const { joinUrl } = await newGroup("Cancel me");
    const { page, errors, close } = await openPage(walletOf(privateKeyToAccount(generatePrivateKey()), true));
    try {
      expect(await tapJoin(page, joinUrl)).toBe("cancelled");
      expect(await page.getByRole("button").textContent()).toBe("Try again");
      expect(await page.getByRole("button").isEnabled()).toBe(true);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it("offers a retry on a temporary failure, and the retry joins", async () => {
    const { groupId, joinUrl } = await newGroup("Flaky network");
    const account = privateKeyToAccount(generatePrivateKey());
    t.network.register(account.address);
    const { page, errors, close } = await openPage(walletOf(account));
    t.network.down = true;
    try {
      expect(await tapJoin(page, joinUrl)).toBe("error");
      expect(await page.locator("#status").textContent()).toContain("The XMTP network is unavailable; try again in a moment");
      await page.screenshot({ path: join(ARTIFACTS, "join-page-retry.png"), fullPage: true });
      t.network.down = false;
      await page.getByRole("button", { name: "Try again" }).click();
      await page.locator("#status[data-state='joined']").waitFor({ timeout: 15_000 });
      expect(t.network.memberAddresses(groupId)).toContain(account.address.toLowerCase());
      // The 503 itself is logged by Chromium as a failed resource; nothing else may be.
      expect(errors.filter((e) => !/status of 503/.test(e))).toEqual([]);
    } finally {
      t.network.down = false;
      await close();
    }
  });

  it("shows the friendly 404 page for a link that does not exist, without errors or scripts", async () => {
    const { page, errors, close } = await openPage();
    try {
      const response = await page.goto(`${base}/join/${"Z".repeat(22)}`);
      expect(response?.status()).toBe(404);
      expect(await page.locator("h1").textContent()).toBe("This link doesn't work");
      expect(await page.locator("script").count()).toBe(0);
      await page.screenshot({ path: join(ARTIFACTS, "join-page-not-found.png"), fullPage: true });
      // A 404 document is reported by Chromium as a failed resource; nothing else may be.
      expect(errors.filter((e) => !/status of 404/.test(e))).toEqual([]);
    } finally {
      await close();
    }
  });

  it("decodes the server's sign-in message in the wallet prompt as readable text", async () => {
    const { joinUrl } = await newGroup("Readable");
    const account = privateKeyToAccount(generatePrivateKey());
    t.network.register(account.address);
    const seen: string[] = [];
    const { page, close } = await openPage({
      address: account.address,
      sign: (raw) => {
        seen.push(hexToString(raw));
        return account.signMessage({ message: { raw } });
      },
    });
    try {
      expect(await tapJoin(page, joinUrl)).toBe("joined");
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatch(new RegExp(`^${new URL(base).host.replace(/\./g, "\\.")} wants you to sign in with your Ethereum account:\\n${account.address}\\n`));
      expect(seen[0]).toContain('Join the XMTP group chat "Readable"');
    } finally {
      await close();
    }
  });
});
