/**
 * A loopback stand-in for the W&B server, as far as the JS client (@wandb/sdk) uses it: the GraphQL Viewer and
 * UpsertBucket calls and the run's file_stream, every request recorded. Shared by the W&B tests.
 */
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "vitest";

export const WANDB_TEST_KEY = "0123456789abcdef0123456789abcdef01234567";

export interface Request {
  path: string;
  authorization: string | undefined;
  body: any;
}

export interface FakeWandb {
  url: string;
  requests: Request[];
  close(): Promise<void>;
}

/** The W&B endpoints the JS client uses. `refuseUpsert`: 403 on run creation; `stallFileStream`: never answer it. */
export async function fakeWandb(opts: { refuseUpsert?: boolean; stallFileStream?: boolean } = {}): Promise<FakeWandb> {
  const requests: Request[] = [];
  const server = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (chunk: Buffer) => (raw += chunk.toString()));
    req.on("end", () => {
      const body = raw ? JSON.parse(raw) : undefined;
      requests.push({ path: req.url ?? "", authorization: req.headers.authorization, body });
      // graphql-request only reads JSON bodies it is told are JSON.
      res.setHeader("content-type", "application/json");
      if (req.url === "/graphql") {
        const query = String(body?.query ?? "");
        if (query.includes("query Viewer")) {
          res.end(JSON.stringify({ data: { viewer: { id: "u1", entity: "taesr-ci", flags: "{}", teams: { edges: [] } } } }));
        } else if (query.includes("mutation UpsertBucket") && opts.refuseUpsert) {
          res.statusCode = 403;
          res.end(JSON.stringify({ errors: [{ message: "permission denied" }] }));
        } else if (query.includes("mutation UpsertBucket")) {
          const v = body.variables;
          const project = { id: "p1", name: v.project, entity: { id: "e1", name: v.entity } };
          const bucket = { id: "b1", name: v.name, displayName: v.displayName, description: null, config: v.config, sweepName: null, project };
          res.end(JSON.stringify({ data: { upsertBucket: { bucket, inserted: true } } }));
        } else {
          res.statusCode = 400;
          res.end(JSON.stringify({ errors: [{ message: "unexpected query" }] }));
        }
      } else if (/^\/files\/[^/]+\/[^/]+\/[^/]+\/file_stream$/.test(req.url ?? "")) {
        if (!opts.stallFileStream) res.end("{}");
      } else {
        res.statusCode = 404;
        res.end("{}");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Live (not zombie) child processes of this test process: the W&B client must be gone after finish(). */
export function liveChildren(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the parenthesised command: state, ppid.
      const [state, ppid] = readFileSync(`/proc/${entry}/stat`, "utf8").split(") ").pop()!.split(" ");
      if (Number(ppid) === process.pid && state !== "Z") pids.push(Number(entry));
    } catch {
      // Gone between readdir and read.
    }
  }
  return pids;
}

export async function expectNoClientProcess(): Promise<void> {
  const deadline = Date.now() + 5000;
  while (liveChildren().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(liveChildren()).toEqual([]);
}

/** The history rows the client streamed for a run (file_stream posts, in order). */
export function historyRows(server: FakeWandb): Record<string, number>[] {
  return server.requests
    .filter((r) => r.path.endsWith("/file_stream"))
    .flatMap((r) => (r.body.files?.["wandb-history.jsonl"]?.content ?? []) as string[])
    .map((line) => JSON.parse(line) as Record<string, number>);
}
