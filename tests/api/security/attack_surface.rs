//! The attack surface, generated from the routes themselves, so a new route is covered
//! without anyone remembering to: every operation of the served OpenAPI document, in every
//! spelling of its path (as listed, a percent-encoded letter, a doubled slash, `.` and `..`
//! segments, a trailing slash, upper case), with every method, from every kind of caller (no
//! credentials, each role, a revoked key, an expired token, a forged token), against a real
//! server with authentication on. No combination may do more than the route policy allows,
//! nothing may answer 500, and every response but the liveness probe's is counted against a
//! rate budget: refusals against the address's, in the order they happen. A second pass sends
//! every operation a body that never finishes and an encoded NUL in its path and query.

use crate::common;
use std::collections::HashMap;

use chrono::{Duration as TimeDelta, Utc};
use common::*;
use pulse::auth::policy::Access;
use pulse::auth::token::TokenCodec;
use pulse::auth::{keys, Role};
use pulse::http::routes;
use serde_json::Value;

const SECRET: &str = "7c1e9a3f5b2d8e4061a7c3f9e5b1d2a8c4f6e0b9d3a7c5e1";
const OTHER_SECRET: &str = "2b8d4f6a0c9e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e";
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// One kind of caller: its name, the header it sends, and the role it really has.
struct Caller {
    name: &'static str,
    header: Option<(&'static str, String)>,
    role: Option<Role>,
}

/// Every spelling of `path`: (name, spelled path, whether it is the route's own spelling).
fn spellings(path: &str) -> Vec<(&'static str, String, bool)> {
    let first = path[1..].find('/').map_or(path.len(), |i| i + 1);
    let letter = path.find(|c: char| c.is_ascii_alphabetic()).unwrap();
    let encoded = format!(
        "{}%{:02x}{}",
        &path[..letter],
        path.as_bytes()[letter],
        &path[letter + 1..]
    );
    vec![
        ("as listed", path.to_string(), true),
        ("encoded letter", encoded, false),
        (
            "doubled slash",
            if first < path.len() {
                format!("{}/{}", &path[..first], &path[first..])
            } else {
                format!("/{path}")
            },
            false,
        ),
        ("dot segment", format!("/.{path}"), false),
        ("dot-dot segment", format!("/x/..{path}"), false),
        ("trailing slash", format!("{path}/"), false),
        ("upper case", path.to_uppercase(), false),
    ]
}

/// What an answer was, as far as the policy is concerned.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Refused before any handler ran, with this status.
    Refused(u16),
    /// Anything else: a handler (or the dashboard) answered.
    Answered(u16),
}

fn verdict(status: u16, code: &str) -> Verdict {
    match (status, code) {
        (400, "non_canonical_path") | (401, _) | (403, _) | (404, "route_not_found") => {
            Verdict::Refused(status)
        }
        _ => Verdict::Answered(status),
    }
}

#[actix_rt::test]
async fn no_spelling_method_or_caller_does_more_than_the_policy_allows() {
    let app = spawn_app_tuned(|s| {
        authenticated(s, SECRET);
        // Budgets that never run out but count every request, so each answer says how many
        // requests its budget has counted.
        address_budget(s, 1e12, 1e-9);
        s.limits.per_network_burst = 1e12;
        s.limits.per_network_per_sec = 1e-9;
        s.limits.per_key_burst = 1e12;
        s.limits.per_key_per_sec = 1e-9;
    })
    .await;
    let base = format!("http://{}", app.address());
    let http = &app.http;
    let pg = app.env.pg().await;

    // Credentials of every kind.
    let mut tokens = HashMap::new();
    let mut admin_id = String::new();
    for role in Role::ALL {
        let key = app.create_key(role, "attack").await;
        if role == Role::Admin {
            admin_id = key.info.id.clone();
        }
        let (_, body) = app
            .post(
                "/api/v1/auth/token",
                &serde_json::json!({"api_key": key.key}),
            )
            .await;
        tokens.insert(role, body["access_token"].as_str().unwrap().to_string());
    }
    let revoked = app.create_key(Role::Admin, "revoked").await;
    assert!(keys::revoke(&pg, &revoked.info.id, "test").await.unwrap());
    let codec = TokenCodec::new(SECRET, "pulse", 60).unwrap();
    let expired = codec
        .issue(&admin_id, Role::Admin, Utc::now() - TimeDelta::hours(2))
        .unwrap()
        .access_token;
    let forged = TokenCodec::new(OTHER_SECRET, "pulse", 3600)
        .unwrap()
        .issue(&admin_id, Role::Admin, Utc::now())
        .unwrap()
        .access_token;
    let bearer = |t: &str| Some(("authorization", format!("Bearer {t}")));
    let callers = vec![
        Caller {
            name: "nobody",
            header: None,
            role: None,
        },
        Caller {
            name: "ingest",
            header: bearer(&tokens[&Role::Ingest]),
            role: Some(Role::Ingest),
        },
        Caller {
            name: "analyst",
            header: bearer(&tokens[&Role::Analyst]),
            role: Some(Role::Analyst),
        },
        Caller {
            name: "admin",
            header: bearer(&tokens[&Role::Admin]),
            role: Some(Role::Admin),
        },
        Caller {
            name: "revoked key",
            header: Some(("x-api-key", revoked.key.clone())),
            role: None,
        },
        Caller {
            name: "expired token",
            header: bearer(&expired),
            role: None,
        },
        Caller {
            name: "forged token",
            header: bearer(&forged),
            role: None,
        },
    ];

    // The routes, as the server itself documents them.
    let doc: Value = http
        .get(format!("{base}/api/openapi.json"))
        .fetch_json()
        .await;
    let mut patterns: Vec<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    patterns.sort();
    assert!(patterns.len() >= 40, "{patterns:?}");

    let mut budgets: HashMap<String, u64> = HashMap::new();
    let mut failures = Vec::new();
    let mut requests = 0u64;
    for pattern in &patterns {
        // Ids nobody has: a request that is allowed through changes nothing.
        let concrete = pattern.replace("{id}", "424242");
        for (spelling, path, canonical) in spellings(&concrete) {
            for method in METHODS {
                let access = routes::policy()
                    .rule_for(&method.parse().unwrap(), pattern)
                    .map(|r| r.access)
                    .filter(|_| canonical);
                for caller in &callers {
                    let header: Vec<(&str, &str)> = caller
                        .header
                        .iter()
                        .map(|(k, v)| (*k, v.as_str()))
                        .collect();
                    let body = (method != "GET" && method != "DELETE").then_some("{}");
                    let res = raw_request(app.address(), method, &path, &header, body).await;
                    requests += 1;
                    let status = res.status;
                    let scope = res.headers.get("ratelimit-scope").cloned();
                    let remaining: Option<u64> = res
                        .headers
                        .get("ratelimit-remaining")
                        .and_then(|v| v.parse().ok());
                    let code = res.json()["error"]["code"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    let got = verdict(status, &code);
                    let case = format!(
                        "{method} {path} ({spelling}) as {}: {status} {code}",
                        caller.name
                    );

                    let allowed = match access {
                        Some(Access::Public) => true,
                        Some(Access::Role(needed)) => caller.role.is_some_and(|r| r.allows(needed)),
                        None => false,
                    };
                    let ok = if allowed {
                        matches!(got, Verdict::Answered(s) if s < 500)
                    } else if access.is_some() {
                        // A listed route the caller may not use: 401 without valid
                        // credentials, 403 with a role that may not.
                        got == Verdict::Refused(if caller.role.is_some() { 403 } else { 401 })
                    } else if canonical {
                        // A method the route does not serve: refused, or the router's 404
                        // for a caller admitted by the strictest rule.
                        matches!(got, Verdict::Refused(_))
                    } else {
                        matches!(got, Verdict::Refused(_))
                            && (spelling == "trailing slash"
                                || spelling == "upper case"
                                || got == Verdict::Refused(400))
                    };
                    if !ok {
                        failures.push(case.clone());
                    }

                    // Every request but the liveness probe is counted in a budget, and the
                    // budget it names shrank by at least this request.
                    if (method, pattern.as_str()) == ("GET", "/health") && canonical {
                        continue;
                    }
                    match (scope, remaining) {
                        (Some(scope), Some(left)) => {
                            let who = if scope == "ip" {
                                "ip".to_string()
                            } else {
                                format!("key:{}", caller.name)
                            };
                            if let Some(before) = budgets.insert(who, left) {
                                if left >= before {
                                    failures.push(format!("{case}: budget not spent"));
                                }
                            }
                            if matches!(got, Verdict::Refused(_)) && scope != "ip" && !allowed {
                                let admin_past_the_gate = caller.role == Some(Role::Admin);
                                if !admin_past_the_gate {
                                    failures
                                        .push(format!("{case}: refusal not counted per address"));
                                }
                            }
                        }
                        _ => failures.push(format!("{case}: not metered")),
                    }
                }
            }
        }
    }
    app.shutdown().await;
    assert!(
        failures.is_empty(),
        "{} of {requests} requests did more than the policy allows or were not counted:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every operation of the served document, from an admitted admin: one whose body is declared
/// and never finished is cut off with 408 `body_timeout` (every route that takes a body reads
/// it through the same budget), and an encoded NUL in a path id or a query answers 400. Nothing
/// answers 500, nothing hangs past the timeout.
#[actix_rt::test]
async fn every_route_cuts_off_an_unfinished_body_and_refuses_nul() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_tuned(|s| {
        authenticated(s, SECRET);
        s.limits.body_timeout_secs = 1;
    })
    .await;
    let addr = app.address();
    let key = app.create_key(Role::Admin, "slow").await.key;
    let doc: Value = reqwest::get(format!("http://{addr}/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut cases = Vec::new();
    for (pattern, operations) in doc["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            if matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
                cases.push((method.clone(), pattern.replace("{id}", "424242"), true));
            }
            if pattern.contains("{id}") {
                cases.push((method.clone(), pattern.replace("{id}", "%00"), false));
            }
            if method == "GET" && pattern != "/ws" {
                let path = pattern.replace("{id}", "424242");
                cases.push((method.clone(), format!("{path}?x=%00"), false));
            }
        }
    }
    assert!(cases.iter().filter(|c| c.2).count() >= 12, "{cases:?}");
    let answers = futures::future::join_all(cases.iter().map(|(method, path, slow)| {
        let key = key.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {key}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                if *slow { 1000 } else { 0 },
                if *slow { "{\"a\":" } else { "" }
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut raw = vec![0u8; 4096];
            // A guard against a hang, not a speed check: a loaded machine may take long.
            let text = match tokio::time::timeout(
                std::time::Duration::from_secs(120),
                stream.read(&mut raw),
            )
            .await
            {
                Ok(Ok(0)) => "closed with no answer".to_string(),
                Ok(Ok(n)) => String::from_utf8_lossy(&raw[..n]).into_owned(),
                Ok(Err(e)) => format!("read failed: {e}"),
                Err(_) => "no answer in 120 s".to_string(),
            };
            let status: u16 = text
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            (status, text)
        }
    }))
    .await;
    let mut failures = Vec::new();
    for ((method, path, slow), (status, text)) in cases.iter().zip(answers) {
        let expected = if *slow { 408 } else { 400 };
        if status != expected || !text.contains("\"error\"") {
            failures.push(format!(
                "{method} {path}: {status} (expected {expected}): {}",
                text.lines().next().unwrap_or("")
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
