import { randomBytes } from "node:crypto";
import { createServer } from "node:http";

/**
 * A stand-in for a Converse-compatible link service, for `npm run dev` only:
 * `POST /api/groups/create {webhook, topic, name, description}` → `{id}`, and
 * `POST /group/<id>/join {walletAddress}` calls the registered webhook the way the link service would.
 */
export async function startDevLinkService(): Promise<{ url: string; close(): Promise<void> }> {
  const links = new Map<string, { webhook: string; topic: string }>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void (async () => {
        const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as Record<string, string>) : {};
        const reply = (status: number, data: unknown) => {
          res.writeHead(status, { "content-type": "application/json" });
          res.end(JSON.stringify(data));
        };
        if (req.method === "POST" && req.url === "/api/groups/create" && body.webhook && body.topic) {
          const id = randomBytes(6).toString("base64url");
          links.set(id, { webhook: body.webhook, topic: body.topic });
          return reply(200, { id });
        }
        const join = /^\/group\/([\w-]+)\/join$/.exec(req.url ?? "");
        const link = join?.[1] ? links.get(join[1]) : undefined;
        if (req.method === "POST" && join && link) {
          const answer = await fetch(link.webhook, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ groupLinkId: join[1], topic: link.topic, walletAddress: body.walletAddress }),
          });
          return reply(answer.status, await answer.json());
        }
        return reply(404, { error: "not found" });
      })().catch(() => {
        res.writeHead(500);
        res.end();
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (typeof address !== "object" || !address) throw new Error("link service did not bind");
  return { url: `http://127.0.0.1:${address.port}`, close: () => new Promise((r) => server.close(() => r())) };
}
