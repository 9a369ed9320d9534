import { JOIN_PAGE_HEADERS } from "./join-page-html.js";

/** The dashboard's headers: the join page's strict policy (our own script and styles only, this origin only, no framing). */
export const ADMIN_PAGE_HEADERS: Readonly<Record<string, string>> = JOIN_PAGE_HEADERS;

/** The dashboard's static files in `public/assets/` (the QR encoder is qrcode-generator's file, vendored as is). */
export const ADMIN_ASSETS = { scripts: ["/assets/qrcode.js", "/assets/admin.js"], style: "/assets/admin.css" } as const;

/**
 * The dashboard's shell. It holds no data and no secret: the script signs in with the wallet and fills each view
 * from the operator API, with the session cookie.
 */
export function renderAdminPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Group chats dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${ADMIN_ASSETS.style}">
${ADMIN_ASSETS.scripts.map((src) => `<script src="${src}" defer></script>`).join("\n")}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<p class="brand">Group chats</p>
<nav id="nav" aria-label="Dashboard" hidden>
<a href="#/groups">Groups</a>
<a href="#/new">New group</a>
<a href="#/status">Status</a>
<span id="who" class="who"></span>
<button id="sign-out" type="button" class="link">Sign out</button>
</nav>
</header>
<main id="main" tabindex="-1">
<noscript><p>This dashboard needs JavaScript to talk to your wallet.</p></noscript>
</main>
<div id="toast" class="toast" role="status" aria-live="polite"></div>
</body>
</html>
`;
}
