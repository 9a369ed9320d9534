// The join page's only script (served as a file: the page's CSP forbids inline script).
// Flow: wallet account → server-composed EIP-4361 message → personal_sign → POST /api/join.
"use strict";

(function main() {
  const root = document.getElementById("join");
  const button = document.getElementById("join-button");
  const status = document.getElementById("status");
  if (!root || !button || !status) return;
  const linkId = root.dataset.linkId || "";
  const WALLETS_URL = "https://ethereum.org/en/wallets/find-wallet/";

  /** EIP-6963 lets several wallets announce themselves; the first one that does is used if window.ethereum is absent. */
  let announced = null;
  window.addEventListener("eip6963:announceProvider", (event) => {
    if (!announced && event.detail && event.detail.provider) announced = event.detail.provider;
  });
  window.dispatchEvent(new Event("eip6963:requestProvider"));

  function provider() {
    return window.ethereum || announced;
  }

  function el(tag, props, children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children || []) node.append(child);
    return node;
  }

  function show(state, title, body, extra) {
    status.hidden = false;
    status.dataset.state = state;
    status.className = `status status-${state}`;
    status.replaceChildren(el("p", { className: "status-title", textContent: title }));
    if (body) status.append(el("p", { textContent: body }));
    for (const node of extra || []) status.append(node);
  }

  function busy(text) {
    button.disabled = true;
    button.textContent = text;
    show("working", text, "");
  }

  function idle(label) {
    button.disabled = false;
    button.textContent = label || "Connect wallet and join";
  }

  async function post(path, body) {
    let response;
    try {
      response = await fetch(path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch {
      throw Object.assign(new Error("Could not reach the server; check your connection and try again."), { network: true });
    }
    const data = await response.json().catch(() => null);
    return { response, data };
  }

  function problem(response, data) {
    const message = data && data.error && data.error.message;
    if (response.status === 429) {
      const wait = Number(response.headers.get("retry-after")) || 60;
      return { title: "Too many attempts", body: `${message || "Please wait"}. Try again in ${wait} seconds.` };
    }
    if (response.status === 503) return { title: "A temporary problem", body: message || "Try again in a moment." };
    if (response.status >= 500) return { title: "Something went wrong on our side", body: message || "Try again in a moment." };
    return { title: "That did not work", body: message || `The server answered ${response.status}.` };
  }

  function utf8Hex(text) {
    return `0x${Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("")}`;
  }

  async function join() {
    const wallet = provider();
    if (!wallet) {
      // On a phone, the usual fix is to open this same page inside the wallet app's own browser.
      const here = `${window.location.host}${window.location.pathname}`;
      const apps = el("p", { className: "wallet-apps" }, [
        el("a", { href: `https://link.metamask.io/dapp/${here}`, textContent: "Open in MetaMask", rel: "noopener noreferrer", className: "link" }),
        " · ",
        el("a", { href: `https://go.cb-w.com/dapp?cb_url=${encodeURIComponent(window.location.href)}`, textContent: "Open in Coinbase Wallet", rel: "noopener noreferrer", className: "link" }),
      ]);
      show("no-wallet", "No wallet found", "Open this page in your wallet app's browser (MetaMask, Coinbase Wallet, Rainbow and others have one), or install a browser wallet, then try again.", [
        apps,
        el("a", { href: WALLETS_URL, textContent: "How to get a wallet", rel: "noopener noreferrer", target: "_blank", className: "link" }),
      ]);
      return;
    }
    try {
      busy("Waiting for your wallet…");
      const accounts = await wallet.request({ method: "eth_requestAccounts" });
      const address = Array.isArray(accounts) ? accounts[0] : undefined;
      if (!address) throw Object.assign(new Error("The wallet shared no account"), { code: 4100 });
      const chainHex = await wallet.request({ method: "eth_chainId" });
      const chainId = Number.parseInt(String(chainHex), 16) || 1;

      busy("Preparing the sign-in message…");
      const challenge = await post("/api/join/challenge", { linkId, address, chainId });
      if (!challenge.response.ok) {
        const p = problem(challenge.response, challenge.data);
        show("error", p.title, p.body);
        idle("Try again");
        return;
      }

      busy("Sign the message in your wallet…");
      const message = challenge.data.message;
      const signature = await wallet.request({ method: "personal_sign", params: [utf8Hex(message), address] });

      busy("Checking what you hold…");
      const result = await post("/api/join", { message, signature });
      if (result.response.ok && result.data && result.data.status === "SUCCESS") {
        show("joined", "You're in!", "You have been added to the group. Open it in any XMTP app with this wallet.", [
          el("a", { href: result.data.openUrl, textContent: "Open in xmtp.chat", rel: "noopener noreferrer", target: "_blank", className: "link primary-link" }),
        ]);
        button.hidden = true;
        return;
      }
      if (result.response.ok && result.data && result.data.status === "DENIED") {
        show("denied", "You can't join with this wallet", result.data.reason, [
          el("p", { className: "hint", textContent: "If another of your wallets qualifies, switch to it in your wallet app and try again." }),
        ]);
        idle("Try another wallet");
        return;
      }
      const p = problem(result.response, result.data);
      show("error", p.title, p.body);
      idle("Try again");
    } catch (error) {
      const code = error && typeof error === "object" ? error.code : undefined;
      if (code === 4001) show("cancelled", "Cancelled", "Nothing was signed. You can try again whenever you like.");
      else if (error && error.network) show("error", "You seem to be offline", error.message);
      else show("error", "Your wallet reported a problem", (error && error.message) || "Try again.");
      idle("Try again");
    }
  }

  button.addEventListener("click", () => {
    void join();
  });
})();
