import { existsSync } from "node:fs";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import type { Hex } from "viem";
import type { PrivateKeyAccount } from "viem/accounts";

/** Debian's Chromium, or `CHROMIUM_PATH`. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Headless Chromium as the browser tests run it. @throws {Error} when Chromium is not installed. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: run .ci/run, or apt-get install chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
  });
}

/** A test EIP-1193 wallet: one account, signing in Node with a local key. */
export interface TestWallet {
  readonly address: string;
  /** Signs the raw bytes personal_sign was given. */
  sign(this: void, hex: Hex): Promise<Hex>;
  readonly reject?: boolean;
}

/** The wallet of a local key (`reject`: every signature request is cancelled, as a person tapping "Cancel"). */
export const walletOf = (account: PrivateKeyAccount, reject = false): TestWallet => ({
  address: account.address,
  sign: (hex) => account.signMessage({ message: { raw: hex } }),
  reject,
});

/** Phone (390 × 844, touch) and laptop (1280 × 800) viewports. */
export const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true } as const;
export const LAPTOP = { viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 } as const;

/** A page (in a context of its own) that records console errors and uncaught exceptions, with `wallet` injected as window.ethereum. */
export async function openPage(
  browser: Browser,
  wallet?: TestWallet,
  device: typeof PHONE | typeof LAPTOP = PHONE,
): Promise<{ page: Page; context: BrowserContext; errors: string[]; close(this: void): Promise<void> }> {
  const context = await browser.newContext({ ...device, acceptDownloads: true });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(msg.text());
  });
  page.on("pageerror", (error) => errors.push(error.message));
  if (wallet) {
    // Signs in Node with the local key, as a wallet would after the person taps "Sign".
    await page.exposeFunction("__testWalletSign", (hex: Hex) => wallet.sign(hex));
    await page.addInitScript({
      content: `(() => {
        const account = ${JSON.stringify(wallet.address)};
        const reject = ${JSON.stringify(wallet.reject === true)};
        window.ethereum = {
          async request({ method, params }) {
            if (method === "eth_requestAccounts" || method === "eth_accounts") return [account];
            if (method === "eth_chainId") return "0x1";
            if (method === "personal_sign") {
              if (reject) throw Object.assign(new Error("User rejected the request."), { code: 4001 });
              if (params[1] !== account) throw new Error("asked to sign for another account");
              return window.__testWalletSign(params[0]);
            }
            throw Object.assign(new Error("Unsupported method " + method), { code: 4200 });
          },
        };
      })();`,
    });
  }
  return { page, context, errors, close: () => context.close() };
}
