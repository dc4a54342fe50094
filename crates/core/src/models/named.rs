//! Unit enums named on the wire, in query strings and in the database by one table each.

/// A unit enum whose values have one name everywhere: JSON, query strings, the database's text
/// columns and metric labels. [`named_enum!`] implements it; code generic over such enums (a
/// filter given as text, a row's column) reads names through it.
pub trait Named: Sized + Copy + 'static {
    /// Every value, in documentation order.
    const ALL: &'static [Self];

    /// The value's name.
    fn as_str(self) -> &'static str;

    /// The value of a name; `None` for an unknown one.
    fn parse(name: &str) -> Option<Self>;

    /// The error for a name that is none of the values.
    fn unknown(name: &str) -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
        format!(
            "unknown value `{name}`, expected one of {}",
            names.join(", ")
        )
    }
}

/// Defines a unit enum named by the `snake_case` form of its variants (serde's, which the
/// OpenAPI document reads too), with `ALL`, `as_str`, `parse`, `Display` and [`Named`]. The
/// `every_name_round_trips_through_serde_and_parse` test keeps the given names equal to serde's.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in documentation order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The stored and wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses a stored or wire name; `None` for an unknown one.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl $crate::models::named::Named for $name {
            const ALL: &'static [$name] = &$name::ALL;

            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }

            fn parse(name: &str) -> Option<$name> {
                $name::parse(name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use named_enum;

#[cfg(test)]
mod tests {
    use super::Named;
    use crate::models::alerts::{AlertStatus, RuleKind, Severity};
    use crate::models::label::LabelKind;
    use crate::models::live::Topic;
    use crate::models::metrics::Dimension;
    use crate::models::role::Role;
    use crate::models::topic::TopicStatus;
    use crate::models::webhooks::{ChannelKind, DeliveryEvent, DeliveryStatus};
    use crate::models::{Emotion, LanguageSource, LanguageSupport, Platform, SentimentLabel};

    fn round_trips<T>()
    where
        T: Named + serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        for value in T::ALL {
            assert_eq!(serde_json::to_value(value).unwrap(), value.as_str());
            let back: T = serde_json::from_value(serde_json::json!(value.as_str())).unwrap();
            assert_eq!(back, *value);
            assert_eq!(T::parse(value.as_str()), Some(*value));
        }
        assert_eq!(T::parse("no such name"), None);
        assert!(T::unknown("x").contains(T::ALL[0].as_str()));
    }

    #[test]
    fn every_name_round_trips_through_serde_and_parse() {
        round_trips::<RuleKind>();
        round_trips::<Severity>();
        round_trips::<AlertStatus>();
        round_trips::<ChannelKind>();
        round_trips::<DeliveryEvent>();
        round_trips::<DeliveryStatus>();
        round_trips::<LabelKind>();
        round_trips::<Topic>();
        round_trips::<Dimension>();
        round_trips::<Role>();
        round_trips::<TopicStatus>();
        round_trips::<Emotion>();
        round_trips::<LanguageSource>();
        round_trips::<LanguageSupport>();
        round_trips::<Platform>();
        round_trips::<SentimentLabel>();
    }
}
