import type { JoinPageView } from "../use-cases/sign-in-join.js";

/**
 * Headers of every join page: the page runs only our own script file (no inline script, no
 * third party), talks only to this origin, and cannot be framed (no clickjacking of the button).
 */
export const JOIN_PAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy": [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' https: data:",
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; "),
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
};

/** Where the page's script and stylesheet are served from (`public/assets/`, static on Vercel). */
export const JOIN_ASSETS = { script: "/assets/join.js", style: "/assets/join.css" } as const;

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] ?? c);

const head = (title: string, description: string, withScript: boolean): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<meta name="description" content="${escapeHtml(description)}">
<meta property="og:title" content="${escapeHtml(title)}">
<meta property="og:description" content="${escapeHtml(description)}">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${JOIN_ASSETS.style}">
${withScript ? `<script src="${JOIN_ASSETS.script}" defer></script>\n` : ""}</head>`;

/** The status a rendered view answers with (404 for a link that does not work, 429 when one network asks too often). */
export function joinPageStatus(view: JoinPageView): number {
  return "busy" in view ? 429 : view.found ? 200 : 404;
}

/** The join page of an active link, the friendly "link does not work" page, or the "try again in a minute" one. */
export function renderJoinPage(view: JoinPageView): string {
  if ("busy" in view) return renderBusy();
  if (!view.found) return renderLinkNotFound();
  const { requirements } = view;
  const lead =
    requirements.items.length <= 1
      ? "To join:"
      : requirements.mode === "all"
        ? "To join, you need all of:"
        : requirements.mode === "atLeast" && requirements.count !== 1
          ? `To join, you need at least ${requirements.count} of:`
          : "To join, you need one of:";
  const summary = view.description || `A token-gated XMTP group chat. ${requirements.items.join("; ")}.`;
  return `${head(`Join ${view.name}`, summary, true)}
<body>
<main class="card" id="join" data-link-id="${escapeHtml(view.linkId)}">
${view.imageUrl ? `<img class="avatar" src="${escapeHtml(view.imageUrl)}" alt="" width="72" height="72">\n` : ""}<p class="eyebrow">XMTP group chat</p>
<h1>${escapeHtml(view.name)}</h1>
${view.description ? `<p class="description">${escapeHtml(view.description)}</p>\n` : ""}<section class="requirements" aria-labelledby="req-title">
<h2 id="req-title">${lead}</h2>
<ul>
${requirements.items.map((item) => `<li>${escapeHtml(item)}</li>`).join("\n")}
</ul>
</section>
<button id="join-button" class="primary" type="button">Connect wallet and join</button>
<div id="status" class="status" role="status" aria-live="polite" hidden></div>
<noscript><p class="status">This page needs JavaScript to talk to your wallet.</p></noscript>
</main>
<footer>Your wallet signs a message to prove the address is yours. No transaction, no gas, no token approval.</footer>
</body>
</html>
`;
}

/** The 429 page: the page was asked for too often from this network. */
function renderBusy(): string {
  return `${head("Try again in a minute", "Too many requests from this network.", false)}
<body>
<main class="card" id="busy">
<p class="eyebrow">XMTP group chat</p>
<h1>Try again in a minute</h1>
<p class="description">This page was opened too many times from your network just now. Wait a minute and reload it.</p>
</main>
</body>
</html>
`;
}

/** The 404 page: says what happened and what to do, names nothing. */
export function renderLinkNotFound(): string {
  return `${head("Link not found", "This group link does not work.", false)}
<body>
<main class="card" id="not-found">
<p class="eyebrow">XMTP group chat</p>
<h1>This link doesn't work</h1>
<p class="description">The group link may have been replaced or turned off, or it was copied incompletely. Ask whoever shared it for a new one.</p>
</main>
</body>
</html>
`;
}
