// Renders the server's OpenAPI document (/api/openapi.json) as a readable reference: every
// operation with its method, path, summary, authentication, parameters, request body and
// responses, then every schema. Served from the binary with the page; no other script, no
// inline script, no network access beyond this server.
"use strict";

(function () {
  const DOCUMENT = "/api/openapi.json";
  const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
  const MAX_DEPTH = 8;
  /** The document being shown, for resolving references. */
  let current = null;

  /** Creates an element; `attrs` may hold `class`, `href`, `id`, `hidden`; children are nodes or text. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "hidden") node.hidden = true;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** Renders the few Markdown features the descriptions use: `code` spans and paragraphs. */
  function prose(text, tag) {
    const node = el(tag || "p", { class: "prose" });
    if (!text) return node;
    const parts = String(text).replace(/\s*\n\s*/g, " ").split("`");
    parts.forEach((part, i) => node.append(i % 2 ? el("code", {}, part) : document.createTextNode(part)));
    return node;
  }

  function refName(ref) {
    return ref.split("/").pop();
  }

  function schemaLink(ref) {
    const name = refName(ref);
    return el("a", { href: "#schema-" + name, class: "ref" }, name);
  }

  /** A one-line description of a schema's type, e.g. `string (date-time) | null`. */
  function typeLabel(schema) {
    if (!schema || typeof schema !== "object") return "any";
    if (schema.$ref) return refName(schema.$ref);
    const types = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : [];
    if (types.length === 0) {
      if (schema.oneOf || schema.anyOf || schema.allOf) return "";
      return "any";
    }
    return types
      .map((t) => (t === "array" && schema.items ? "array of " + typeLabel(schema.items) : t))
      .map((t) => (schema.format && t !== "null" ? t + " (" + schema.format + ")" : t))
      .join(" | ");
  }

  /** Constraints worth showing: enum, bounds, lengths, pattern, default, example. */
  function constraints(schema) {
    const notes = [];
    if (schema.enum) notes.push(el("span", {}, "one of ", schema.enum.map((v, i) => [i ? ", " : "", el("code", {}, JSON.stringify(v))])));
    if (schema.const !== undefined) notes.push(el("span", {}, "always ", el("code", {}, JSON.stringify(schema.const))));
    const bound = (key, label) => {
      if (schema[key] !== undefined) notes.push(label + " " + schema[key]);
    };
    bound("minimum", "≥");
    bound("exclusiveMinimum", ">");
    bound("maximum", "≤");
    bound("exclusiveMaximum", "<");
    bound("minLength", "min length");
    bound("maxLength", "max length");
    bound("minItems", "min items");
    bound("maxItems", "max items");
    if (schema.pattern) notes.push(el("span", {}, "pattern ", el("code", {}, schema.pattern)));
    if (schema.default !== undefined) notes.push(el("span", {}, "default ", el("code", {}, JSON.stringify(schema.default))));
    if (schema.example !== undefined) notes.push(el("span", {}, "example ", el("code", {}, JSON.stringify(schema.example))));
    if (schema.additionalProperties === false) notes.push("no other properties");
    if (notes.length === 0) return null;
    return el("span", { class: "constraints" }, notes.map((n, i) => [i ? "; " : "", n]));
  }

  /** Splits `oneOf: [{type: null}, X]` (how nullable references are written) into X + nullable. */
  function unwrapNullable(schema) {
    const alternatives = schema && schema.oneOf;
    if (alternatives && alternatives.length === 2) {
      const rest = alternatives.filter((s) => !(s && s.type === "null"));
      if (rest.length === 1) return { schema: Object.assign({}, rest[0], { description: rest[0].description || schema.description }), nullable: true };
    }
    return { schema, nullable: false };
  }

  /** The type cell of a schema: links for references, labels for the rest, `| null` when nullable. */
  function typeNode(schema) {
    const { schema: inner, nullable } = unwrapNullable(schema);
    const node = el("span", { class: "type" });
    if (inner && inner.$ref) node.append(schemaLink(inner.$ref));
    else node.append(typeLabel(inner));
    if (inner && inner.type === "array" && inner.items && inner.items.$ref) {
      node.replaceChildren("array of ", schemaLink(inner.items.$ref));
    }
    if (nullable) node.append(" | null");
    return node;
  }

  /** The nested detail of a schema (properties, alternatives, items), or null when the type says it all. */
  function schemaDetail(schema, depth) {
    if (!schema || typeof schema !== "object" || depth > MAX_DEPTH) return null;
    const { schema: inner } = unwrapNullable(schema);
    if (inner.$ref) return null;
    for (const key of ["oneOf", "anyOf", "allOf"]) {
      if (inner[key]) {
        const label = { oneOf: "One of:", anyOf: "Any of:", allOf: "All of:" }[key];
        return el("div", { class: "composite" }, el("span", { class: "label" }, label),
          el("ul", { class: "alternatives" }, inner[key].map((part) => el("li", {},
            typeNode(part), part.description ? prose(part.description, "span") : null,
            constraints(part), schemaDetail(part, depth + 1)))));
      }
    }
    if (inner.properties) return propertiesList(inner, depth);
    const items = inner.items;
    if (items && !items.$ref) return schemaDetail(items, depth + 1);
    return null;
  }

  function propertiesList(schema, depth) {
    const required = new Set(schema.required || []);
    return el("ul", { class: "properties" }, Object.entries(schema.properties).map(([name, prop]) => {
      const { schema: inner } = unwrapNullable(prop);
      return el("li", {},
        el("code", { class: "name" }, name),
        required.has(name) ? el("span", { class: "required" }, "required") : el("span", { class: "optional" }, "optional"),
        typeNode(prop),
        prop.description || inner.description ? prose(prop.description || inner.description, "span") : null,
        constraints(inner),
        schemaDetail(prop, depth + 1));
    }));
  }

  /** The component a `#/components/schemas/...` reference names. */
  function component(ref) {
    const schemas = (current && current.components && current.components.schemas) || {};
    return schemas[refName(ref)] || {};
  }

  /** The schema a reference (or an array of references) stands for, one level deep. */
  function expanded(schema) {
    const { schema: inner } = unwrapNullable(schema);
    if (inner && inner.$ref) return component(inner.$ref);
    if (inner && inner.type === "array" && inner.items && inner.items.$ref) return component(inner.items.$ref);
    return null;
  }

  /**
   * A schema block: its type line, its constraints and its detail. With `expand`, a referenced
   * schema is shown inline too (its own references stay links), so a body reads in place.
   */
  function schemaBlock(schema, expand) {
    const target = expand ? expanded(schema) : null;
    return el("div", { class: "schema" }, typeNode(schema), constraints(unwrapNullable(schema).schema),
      target ? [target.description ? prose(target.description, "span") : null, constraints(target), schemaDetail(target, 1)]
        : schemaDetail(schema, 0));
  }

  function resolve(doc, item) {
    if (item && item.$ref) {
      const path = item.$ref.replace(/^#\//, "").split("/");
      let node = doc;
      for (const part of path) node = node && node[part];
      return Object.assign({ refName: refName(item.$ref) }, node);
    }
    return item;
  }

  function securityNote(doc, op) {
    const requirements = op.security !== undefined ? op.security : doc.security || [];
    const open = requirements.length === 0 || requirements.some((r) => Object.keys(r).length === 0);
    if (open) return el("p", { class: "auth public" }, "Public: no credentials needed.");
    const schemes = requirements.map((r) => Object.keys(r).join(" + "));
    return el("p", { class: "auth" }, "Requires ", schemes.map((s, i) => [i ? " or " : "", el("code", {}, s)]), " (see Authentication).");
  }

  function parametersTable(doc, params) {
    if (!params || params.length === 0) return null;
    return el("div", { class: "block" }, el("h4", {}, "Parameters"),
      el("table", {}, el("thead", {}, el("tr", {}, ["Name", "In", "Type", "Description"].map((h) => el("th", {}, h)))),
        el("tbody", {}, params.map((raw) => {
          const p = resolve(doc, raw);
          return el("tr", {},
            el("td", {}, el("code", {}, p.name), p.required ? el("span", { class: "required" }, "required") : null),
            el("td", {}, p.in),
            el("td", {}, p.schema ? typeNode(p.schema) : "", p.schema ? constraints(unwrapNullable(p.schema).schema) : null,
              p.schema && expanded(p.schema) ? constraints(expanded(p.schema)) : null,
              p.schema ? schemaDetail(p.schema, 1) : null),
            el("td", {}, prose(p.description || "")));
        }))));
  }

  function contentList(content, expand) {
    return Object.entries(content || {}).map(([type, media]) =>
      el("div", { class: "media" }, el("code", { class: "content-type" }, type), media.schema ? schemaBlock(media.schema, expand) : null));
  }

  function requestBody(doc, raw) {
    if (!raw) return null;
    const body = resolve(doc, raw);
    return el("div", { class: "block" }, el("h4", {}, "Request body", body.required ? el("span", { class: "required" }, "required") : null),
      body.description ? prose(body.description) : null, contentList(body.content, true));
  }

  function responsesTable(doc, responses) {
    return el("div", { class: "block" }, el("h4", {}, "Responses"),
      el("table", {}, el("thead", {}, el("tr", {}, ["Status", "Description", "Body"].map((h) => el("th", {}, h)))),
        el("tbody", {}, Object.entries(responses || {}).map(([status, raw]) => {
          const r = resolve(doc, raw);
          const headers = Object.keys(r.headers || {});
          return el("tr", { class: "status-" + status[0] },
            el("td", {}, el("code", { class: "status" }, status)),
            el("td", {}, prose(r.description || ""), headers.length ? el("p", { class: "headers" }, "Headers: ", headers.map((h, i) => [i ? ", " : "", el("code", {}, h)])) : null),
            el("td", {}, contentList(r.content, status[0] === "2")));
        }))));
  }

  function operationId(method, path, op) {
    return "op-" + (op.operationId || (method + path).replace(/[^A-Za-z0-9]+/g, "-"));
  }

  function operationSection(doc, method, path, op) {
    const id = operationId(method, path, op);
    const details = el("details", { class: "operation", id },
      el("summary", {},
        el("span", { class: "method method-" + method }, method.toUpperCase()),
        el("code", { class: "path" }, path),
        el("span", { class: "summary" }, op.summary || "")),
      op.description ? prose(op.description) : null,
      securityNote(doc, op),
      parametersTable(doc, op.parameters),
      requestBody(doc, op.requestBody),
      responsesTable(doc, op.responses));
    details.dataset.search = [method, path, op.summary, op.description, (op.tags || []).join(" "), op.operationId].join(" ").toLowerCase();
    return details;
  }

  function authenticationSection(doc) {
    const schemes = (doc.components && doc.components.securitySchemes) || {};
    if (Object.keys(schemes).length === 0) return null;
    return el("section", { id: "authentication", class: "tag" }, el("h2", {}, "Authentication"),
      prose("Operations marked public need no credentials; every other operation takes one of the schemes below and may answer 401, 403 or 429 in the error shape."),
      el("ul", {}, Object.entries(schemes).map(([name, s]) => el("li", {}, el("code", {}, name), ": ",
        s.type === "http" ? "HTTP " + s.scheme + (s.bearerFormat ? " (" + s.bearerFormat + ")" : "") : s.type === "apiKey" ? "API key in the " + s.in + " " : s.type,
        s.type === "apiKey" ? el("code", {}, s.name) : null,
        s.description ? [" — ", prose(s.description, "span")] : null))));
  }

  function schemasSection(doc) {
    const schemas = (doc.components && doc.components.schemas) || {};
    return el("section", { id: "schemas", class: "tag" }, el("h2", {}, "Schemas"),
      Object.entries(schemas).map(([name, schema]) => el("details", { class: "schema-def", id: "schema-" + name },
        el("summary", {}, el("code", {}, name), schema.description ? prose(schema.description, "span") : null),
        schemaBlock(schema))));
  }

  function render(doc) {
    current = doc;
    const content = document.getElementById("content");
    const toc = document.getElementById("toc");
    const info = doc.info || {};
    document.title = (info.title || "API") + " API reference";
    document.getElementById("title").replaceChildren((info.title || "API") + " API reference ", el("span", { class: "version" }, info.version ? "v" + info.version : ""));

    const byTag = new Map();
    for (const tag of doc.tags || []) byTag.set(tag.name, { tag, operations: [] });
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const tag = (op.tags && op.tags[0]) || "other";
        if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, operations: [] });
        byTag.get(tag).operations.push({ method, path, op });
      }
    }

    const sections = [];
    const tocList = el("ul", {});
    for (const { tag, operations } of byTag.values()) {
      if (operations.length === 0) continue;
      const section = el("section", { class: "tag", id: "tag-" + tag.name },
        el("h2", {}, tag.name), tag.description ? prose(tag.description) : null,
        operations.map(({ method, path, op }) => operationSection(doc, method, path, op)));
      sections.push(section);
      tocList.append(el("li", {}, el("a", { href: "#tag-" + tag.name }, tag.name),
        el("ul", {}, operations.map(({ method, path, op }) => el("li", { "data-target": operationId(method, path, op) },
          el("a", { href: "#" + operationId(method, path, op) }, el("span", { class: "method method-" + method }, method.toUpperCase()), " ", path))))));
    }
    tocList.append(el("li", {}, el("a", { href: "#authentication" }, "Authentication")), el("li", {}, el("a", { href: "#schemas" }, "Schemas")));
    toc.replaceChildren(tocList);
    content.replaceChildren(
      info.description ? prose(info.description, "p") : "",
      authenticationSection(doc) || "",
      ...sections,
      schemasSection(doc));
    openTarget();
  }

  /** Opens the operation or schema the URL fragment names. */
  function openTarget() {
    const id = decodeURIComponent(location.hash.slice(1));
    const target = id && document.getElementById(id);
    if (target && target.tagName === "DETAILS") {
      target.open = true;
      target.scrollIntoView();
    }
  }

  function applyFilter(text) {
    const needle = text.trim().toLowerCase();
    for (const op of document.querySelectorAll("details.operation")) {
      const match = !needle || op.dataset.search.includes(needle);
      op.hidden = !match;
      const entry = document.querySelector('#toc li[data-target="' + op.id + '"]');
      if (entry) entry.hidden = !match;
    }
    for (const section of document.querySelectorAll("section.tag")) {
      const ops = section.querySelectorAll("details.operation");
      if (ops.length) section.hidden = [...ops].every((o) => o.hidden);
    }
  }

  function start() {
    const status = document.getElementById("status");
    document.getElementById("filter").addEventListener("input", (e) => applyFilter(e.target.value));
    window.addEventListener("hashchange", openTarget);
    fetch(DOCUMENT, { headers: { Accept: "application/json" } })
      .then((res) => {
        if (!res.ok) throw new Error(DOCUMENT + " answered " + res.status);
        return res.json();
      })
      .then(render)
      .catch((err) => {
        status.className = "error";
        status.textContent = "Could not load the API document: " + err.message;
      });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
