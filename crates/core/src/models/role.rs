//! The roles an API key can hold.

use super::named::named_enum;

named_enum! {
    /// What a key may do. `admin` may do everything; `editor` reads what an analyst reads and
    /// writes topics; `analyst` reads (REST, WebSocket) and works alerts; `ingest` only appends
    /// events.
    Role {
        Ingest = "ingest",
        Analyst = "analyst",
        Editor = "editor",
        Admin = "admin",
    }
}

impl Role {
    /// Whether this role may do what `needed` may: its own, an editor what an analyst may,
    /// an admin everything.
    pub fn allows(self, needed: Role) -> bool {
        self == needed || self == Role::Admin || (self == Role::Editor && needed == Role::Analyst)
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::parse(s)
            .ok_or_else(|| format!("unknown role `{s}`; expected ingest, analyst, editor or admin"))
    }
}
