//! `pulse keys`: key administration against the database directly, audited as the shell
//! user who ran it.

use crate::config::Settings;
use crate::db::audit::{self, Outcome};
use crate::models::key_scope::KeyScope;
use clap::Subcommand;

/// `pulse keys`: API key administration from the server's own shell, which is how the first
/// admin key comes to exist.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (the only time it is shown).
    Create {
        /// What the key may do: ingest (append events), analyst (read, live updates, work
        /// alerts) or admin (everything, including rules, webhooks and keys).
        #[arg(long)]
        role: crate::auth::Role,
        /// A label for people: who or what uses the key.
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        scope: ScopeArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set what a key may send (replacing its scope; no limits given: it may send anything).
    Scope {
        /// The key's id.
        id: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// List keys (never their secrets).
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id: every process refuses it within `auth.key_refresh_secs`.
    Revoke {
        /// The key's id (the part after `pulse_`, before the second `_`).
        id: String,
    },
    /// Make a new key in place of one (the same name, role and scope, speaking as the same
    /// producer, so the posts stored under the old key stay its own) and print it; revoke the
    /// old one once its users have switched.
    Rotate {
        /// The id of the key to replace.
        id: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// What a key may send: each flag may be repeated; none given, anything.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ScopeArgs {
    /// A platform whose posts the key may create.
    #[arg(long = "platform", value_name = "PLATFORM")]
    platforms: Vec<String>,
    /// A product the key's posts must name.
    #[arg(long = "product", value_name = "PRODUCT")]
    products: Vec<String>,
    /// A prefix the post ids the key creates, deletes and engages with must start with.
    #[arg(long = "id-prefix", value_name = "PREFIX")]
    id_prefixes: Vec<String>,
}

impl ScopeArgs {
    fn scope(self) -> anyhow::Result<KeyScope> {
        let platforms = self
            .platforms
            .iter()
            .map(|p| {
                crate::models::Platform::parse(&p.to_lowercase())
                    .ok_or_else(|| anyhow::anyhow!("unknown platform {p:?}"))
            })
            .collect::<anyhow::Result<_>>()?;
        let scope = KeyScope::new(platforms, self.products, self.id_prefixes);
        scope.validate().map_err(anyhow::Error::msg)?;
        Ok(scope)
    }
}

/// How the audit log names the command line's user.
fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// Runs one `pulse keys` command.
pub async fn run(settings: &Settings, command: KeysCommand) -> anyhow::Result<()> {
    crate::db::migrate(&settings.database.url).await?;
    let pool = crate::db::pool(&settings.database.url, 1)?;
    let mut client = pool.get().await?;
    let actor = actor();
    match command {
        KeysCommand::Create {
            role,
            name,
            scope,
            json,
        } => {
            let name = super::keys::checked_name(&name).map_err(anyhow::Error::msg)?;
            let scope = scope.scope()?;
            let tx = client.transaction().await?;
            let key = super::keys::create(&*tx, role, name, Some(&scope), &actor).await?;
            commit_audited(
                tx,
                &actor,
                "key.create",
                &key.info.id,
                serde_json::json!({"role": role, "name": name, "scope": scope}),
            )
            .await?;
            let note = format!(
                "created {} key {} ({}); this is the only time the key is shown",
                role,
                key.info.id,
                if name.is_empty() { "no name" } else { name }
            );
            show_new_key(&key, json, &note)?;
        }
        KeysCommand::Scope { id, scope } => {
            let scope = scope.scope()?;
            let tx = client.transaction().await?;
            let key = super::keys::set_scope(&*tx, &id, &scope)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no key with id {id}"))?;
            commit_audited(
                tx,
                &actor,
                "key.update",
                &id,
                serde_json::json!({"scope": scope}),
            )
            .await?;
            eprintln!("key {id} may send {}", describe(key.scope.as_ref()));
        }
        KeysCommand::List { json } => {
            let keys = super::keys::list(&**client).await?;
            if json {
                println!("{}", serde_json::to_string(&keys)?);
            } else {
                println!(
                    "{:<14} {:<8} {:<25} {:<8} {:<32} name",
                    "id", "role", "created", "state", "scope"
                );
                for k in keys {
                    println!(
                        "{:<14} {:<8} {:<25} {:<8} {:<32} {}",
                        k.id,
                        k.role.as_str(),
                        k.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        },
                        describe(k.scope.as_ref()),
                        k.name
                    );
                }
            }
        }
        KeysCommand::Revoke { id } => {
            let tx = client.transaction().await?;
            let revoked = super::keys::revoke(&*tx, &id, &actor).await?;
            anyhow::ensure!(revoked, "no active key with id {id}");
            commit_audited(tx, &actor, "key.revoke", &id, serde_json::Value::Null).await?;
            eprintln!("revoked key {id}");
        }
        KeysCommand::Rotate { id, json } => {
            let tx = client.transaction().await?;
            let key = super::keys::rotate(&*tx, &id, &actor)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no active key with id {id}"))?;
            commit_audited(
                tx,
                &actor,
                "key.rotate",
                &id,
                serde_json::json!({"new_key": key.info.id}),
            )
            .await?;
            let note = format!(
                "key {} replaces {id} and speaks as key {}; revoke {id} once its users have \
                 switched; this is the only time the key is shown",
                key.info.id,
                key.info.speaks_as.as_deref().unwrap_or(&id)
            );
            show_new_key(&key, json, &note)?;
        }
    }
    Ok(())
}

/// Prints a new key: as JSON, or the key alone on stdout and `note` for people on stderr.
fn show_new_key(key: &super::keys::NewKey, json: bool, note: &str) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(key)?);
    } else {
        println!("{}", key.key);
        eprintln!("{note}");
    }
    Ok(())
}

/// Records `action` on `target` by `actor` as succeeded in `tx`'s audit log, and commits the
/// change with it.
async fn commit_audited(
    tx: deadpool_postgres::Transaction<'_>,
    actor: &str,
    action: &str,
    target: &str,
    payload: serde_json::Value,
) -> anyhow::Result<()> {
    let entry = audit::Entry {
        actor: actor.to_string(),
        action: action.into(),
        target: Some(target.to_string()),
        payload,
        ..Default::default()
    };
    audit::record(&*tx, &entry, Outcome::Succeeded, None).await?;
    tx.commit().await?;
    Ok(())
}

/// A scope in a few words for people: `anything`, or each limit.
fn describe(scope: Option<&KeyScope>) -> String {
    let Some(scope) = scope.filter(|s| !s.is_unlimited()) else {
        return "anything".into();
    };
    let mut parts = Vec::new();
    if !scope.platforms.is_empty() {
        let names: Vec<&str> = scope.platforms.iter().map(|p| p.as_str()).collect();
        parts.push(format!("platforms {}", names.join(",")));
    }
    if !scope.products.is_empty() {
        parts.push(format!("products {}", scope.products.join(",")));
    }
    if !scope.id_prefixes.is_empty() {
        parts.push(format!("ids {}", scope.id_prefixes.join(",")));
    }
    if parts.is_empty() {
        return "nothing (a scope this version cannot read)".into();
    }
    parts.join("; ")
}
