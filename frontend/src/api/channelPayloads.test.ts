// The digest's Slack and Teams forms against their publishers' definitions: the Teams card
// against the Adaptive Card 1.4 JSON schema (Microsoft's, in ./published), the Slack message
// compiled strictly against Slack's TypeScript types of Block Kit (`@slack/types`), with the
// limits Slack documents beside them. The samples are contract.test.ts's: the committed ones,
// or those `tests/api/dashboard.rs` just captured (PULSE_PAYLOAD_DIR).
import { readFileSync, unlinkSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import Ajv from "ajv";
import draft6 from "ajv/dist/refs/json-schema-draft-06.json" with { type: "json" };
import ts from "typescript";
import { describe, expect, it } from "vitest";

const dir = process.env.PULSE_PAYLOAD_DIR ?? join(import.meta.dirname, "fixtures");
const preview = JSON.parse(readFileSync(join(dir, "digest-preview.json"), "utf8"));
const published = JSON.parse(readFileSync(join(import.meta.dirname, "published/adaptive-card-1.4.json"), "utf8"));
// The schema names itself with draft-04's `id`, which the validator reads as draft-06's `$id`.
const { id: schemaId, ...cardSchema } = published;
cardSchema.$id = schemaId;

/** The schema's complaints about `card` (none when it is valid). */
function cardProblems(card: unknown): string[] {
  // Formats (uri, uri-reference) are checked below with URL, not by the schema's validator.
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  ajv.addMetaSchema(draft6);
  const validate = ajv.compile(cardSchema);
  return validate(card) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

/** What TypeScript says of `message` typed as Slack's message of blocks (nothing when valid). */
function slackProblems(message: unknown): string[] {
  // Under node_modules so `@slack/types` resolves; outside `src`, so the build never sees it.
  const cache = join(import.meta.dirname, "../../node_modules/.cache");
  mkdirSync(cache, { recursive: true });
  const file = join(cache, `slack-message-${process.pid}-${Date.now()}.ts`);
  writeFileSync(
    file,
    `import type { KnownBlock } from "@slack/types";\nexport const message: { text: string; blocks: KnownBlock[] } = ${JSON.stringify(message, null, 1)};\n`,
  );
  try {
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
    });
    return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, " "));
  } finally {
    unlinkSync(file);
  }
}

// Compiling a message with TypeScript takes seconds, many more on a machine running other tests.
const COMPILE_MS = 120_000;

describe("a digest's Teams and Slack forms", () => {
  const { slack, teams } = preview.rendered;

  it("Teams: a message of one Adaptive Card that the published 1.4 schema accepts", () => {
    expect(teams.type).toBe("message");
    expect(teams.attachments).toHaveLength(1);
    const [attachment] = teams.attachments;
    expect(attachment.contentType).toBe("application/vnd.microsoft.card.adaptive");
    const card = attachment.content;
    expect(card.type).toBe("AdaptiveCard");
    expect(card.version).toBe("1.4");
    expect(cardProblems(card)).toEqual([]);
    const urls = JSON.stringify(card).match(/"url":"[^"]*"/g) ?? [];
    expect(urls.length).toBeGreaterThan(0);
    for (const u of urls) expect(() => new URL(JSON.parse(`{${u}}`).url)).not.toThrow();
  });

  it("Teams: the schema check fails on a card it should refuse", () => {
    const card = structuredClone(teams.attachments[0].content);
    card.body[0].colour = "red";
    expect(cardProblems(card).length).toBeGreaterThan(0);
    expect(cardProblems({ ...teams.attachments[0].content, body: [{ type: "Carousel" }] }).length).toBeGreaterThan(0);
  });

  it("Slack: blocks that Slack's own types accept, within Slack's documented limits", { timeout: COMPILE_MS }, () => {
    expect(slackProblems(slack)).toEqual([]);
    expect(slack.text.length).toBeGreaterThan(0);
    // https://api.slack.com/reference/block-kit/blocks: at most 50 blocks a message, a section's
    // text at most 3,000 characters, a header's 150, a button's URL 3,000.
    expect(slack.blocks.length).toBeLessThanOrEqual(50);
    for (const b of slack.blocks) {
      if (b.type === "section" && b.text) expect(b.text.text.length).toBeLessThanOrEqual(3000);
      if (b.type === "header") expect(b.text.text.length).toBeLessThanOrEqual(150);
      for (const e of b.elements ?? []) if (e.url) expect(e.url.length).toBeLessThanOrEqual(3000);
    }
  });

  it("Slack: the type check fails on a block Slack does not define", { timeout: COMPILE_MS }, () => {
    const wrong = structuredClone(slack);
    wrong.blocks[0].type = "sectionn";
    expect(slackProblems(wrong).length).toBeGreaterThan(0);
  });
});
