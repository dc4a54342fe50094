// Type-checks every dashboard of ../dashboards against Grafana's dashboard schema: each JSON
// file becomes a TypeScript object literal typed as @grafana/schema's `Dashboard` (enums read
// as their JSON values), so a misspelt or misplaced field, a wrong type or a missing required
// field fails `tsc`, as Grafana's own schema would reject it.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dashboards = join(here, "..", "dashboards");
const out = join(here, "generated");
rmSync(out, { recursive: true, force: true });
mkdirSync(out);

const files = readdirSync(dashboards).filter((f) => f.endsWith(".json"));
if (files.length === 0) throw new Error(`no dashboard in ${dashboards}`);
const header =
  "import type { Dashboard } from '@grafana/schema';\n" +
  "type Json<T> = T extends string ? `${T}` : T extends number | boolean | null | undefined ? T\n" +
  "  : T extends (infer U)[] ? Json<U>[] : { [K in keyof T]: Json<T[K]> };\n";
for (const f of files) {
  const body = JSON.stringify(JSON.parse(readFileSync(join(dashboards, f), "utf8")), null, 2);
  writeFileSync(join(out, f.replace(/\.json$/, ".ts")), `${header}export const dashboard: Json<Dashboard> = ${body};\n`);
}
writeFileSync(
  join(out, "tsconfig.json"),
  JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, module: "esnext", moduleResolution: "bundler", target: "es2022", skipLibCheck: true },
    include: ["*.ts"],
  }),
);
execFileSync(join(here, "node_modules", ".bin", "tsc"), ["-p", out], { stdio: "inherit" });
console.log(`${files.length} dashboard(s) fit Grafana's schema (@grafana/schema)`);
