#!/usr/bin/env node
// Drive an MCP server with the official TypeScript SDK client.
//
//   node ts_client.mjs URL TRANSPORT        TRANSPORT = streamable-http | sse
//
// Connects (initialize), lists tools, calls `echo` {text: "hi"} and `add` with a
// wrong-typed argument {a: "x", b: 2}, then closes. Prints one JSON line that
// summarises what it saw. Exit status: 0 all checks passed, 1 a check failed,
// 2 bad usage or the session itself failed (connect, request, timeout).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const REQUEST_TIMEOUT_MS = 20_000;
const TRANSPORTS = {
  "streamable-http": (url) => new StreamableHTTPClientTransport(url),
  sse: (url) => new SSEClientTransport(url),
};

// True when `text` names `field` as a word of its own, e.g. pydantic's location
// line ("\na\n"), "a:", "'a'". A word followed by a space and a lower-case word
// is prose ("should be a valid integer"), not a field name, so it does not count.
function mentionsField(text, field) {
  const f = field.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(?<![\\w-])${f}(?![\\w-])(?! [a-z])`).test(text);
}

function textOf(result) {
  return (result.content ?? [])
    .filter((block) => block.type === "text")
    .map((block) => block.text)
    .join("\n");
}

async function main(argv) {
  const [urlArg, transportName] = argv;
  if (!urlArg || !(transportName in TRANSPORTS)) {
    console.error(`usage: ts_client.mjs URL (${Object.keys(TRANSPORTS).join("|")})`);
    return 2;
  }
  const summary = { transport: transportName, url: urlArg, ok: false, failures: [] };
  const check = (condition, message) => {
    if (!condition) summary.failures.push(message);
  };
  const options = { timeout: REQUEST_TIMEOUT_MS };

  const client = new Client({ name: "mcp-embed-ts-client", version: "1.0.0" });
  const transport = TRANSPORTS[transportName](new URL(urlArg));
  try {
    await client.connect(transport, options);
    summary.server = client.getServerVersion();
    summary.protocolVersion = transport.protocolVersion ?? null;
    summary.sessionId = transport.sessionId ?? null;

    const { tools } = await client.listTools(undefined, options);
    summary.tools = tools.map((tool) => tool.name);
    for (const name of ["echo", "add"]) {
      check(summary.tools.includes(name), `tools/list lacks ${name}: ${JSON.stringify(summary.tools)}`);
    }

    const echo = await client.callTool({ name: "echo", arguments: { text: "hi" } }, undefined, options);
    summary.echo = { isError: echo.isError ?? false, text: textOf(echo) };
    check(!echo.isError, `echo returned isError: ${summary.echo.text}`);
    check(summary.echo.text === "hi", `echo text is ${JSON.stringify(summary.echo.text)}, expected "hi"`);

    const bad = await client.callTool({ name: "add", arguments: { a: "x", b: 2 } }, undefined, options);
    summary.badAdd = { isError: bad.isError ?? false, text: textOf(bad) };
    check(bad.isError === true, `add {a:"x"} did not return isError:true: ${JSON.stringify(bad)}`);
    check(mentionsField(summary.badAdd.text, "a"), `add error does not name field a: ${summary.badAdd.text}`);
  } catch (err) {
    summary.error = String(err?.stack ?? err);
  } finally {
    await client.close().catch((err) => {
      summary.failures.push(`close failed: ${err}`);
    });
  }
  summary.ok = !summary.error && summary.failures.length === 0;
  console.log(JSON.stringify(summary));
  if (summary.error) return 2;
  return summary.ok ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
