//! The roles an API key can hold.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a key may do. `admin` may do everything; `editor` reads what an analyst reads and
/// writes topics; `analyst` reads (REST, WebSocket) and works alerts; `ingest` only appends
/// events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Ingest,
    Analyst,
    Editor,
    Admin,
}

impl Role {
    /// Every role, least privileged first.
    pub const ALL: [Role; 4] = [Role::Ingest, Role::Analyst, Role::Editor, Role::Admin];

    /// The name used in keys, tokens and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Analyst => "analyst",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// Parses a role name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether this role may do what `needed` may: its own, an editor what an analyst may,
    /// an admin everything.
    pub fn allows(self, needed: Role) -> bool {
        self == needed || self == Role::Admin || (self == Role::Editor && needed == Role::Analyst)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s)
            .ok_or_else(|| format!("unknown role `{s}`; expected ingest, analyst, editor or admin"))
    }
}
