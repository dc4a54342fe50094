//! Template-based post texts with a known tone and emotion.
//!
//! A text is one core template (picked by [`Flavor`]) with its slots filled, optionally wrapped
//! in an opener, a closing remark, @mentions, hashtags and emoji. Sentiment is carried by
//! ordinary words ("love", "terrible", "disappointed") so lexicon analyzers read it the way a
//! person would; neutral templates avoid such words.
//!
//! Most of its length is the template tables (one per flavor and language); the code that fills
//! them follows the tables.

mod templates;

use rand::rngs::SmallRng;
use rand::Rng;
use templates::{
    ToneWords, ANGER, BRAND_MENTIONS, CHURN, CHURN_TAGS, COMPETITORS, CURSES, FUTURE_TIMES, HOURS,
    INSULTS, JOY, LOCAL_TEXTS, NEGATIVE_ADJECTIVES, NEGATIVE_WORDS, NEUTRAL, NEUTRAL_WORDS, NEWS,
    OPTIMISM, PAST_TIMES, POSITIVE_ADJECTIVES, POSITIVE_WORDS, PRICES, PROGRESS, SADNESS,
    SERVICE_DESKS, SINCE_TIMES, SPONSORED_TAGS, TOXIC, UNPLACED_LANGUAGES, VERSIONS,
};

use super::world::{Channel, Product, PRODUCTS};

/// The polarity a text was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    Positive,
    Negative,
    Neutral,
}

impl Tone {
    fn words(self) -> &'static ToneWords {
        match self {
            Tone::Positive => &POSITIVE_WORDS,
            Tone::Negative => &NEGATIVE_WORDS,
            Tone::Neutral => &NEUTRAL_WORDS,
        }
    }
}

/// The sets of short texts in other languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mood {
    Positive,
    Negative,
    Churn,
    Neutral,
}

/// What a text expresses; each flavor has its own templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Joy,
    Optimism,
    Anger,
    Sadness,
    /// Intent to leave: cancel, refund, switch to a competitor, close the account.
    Churn,
    /// Mild insults and profanity aimed at the brand.
    Toxic,
    Neutral,
    /// Announcement-style posts, mostly from news accounts.
    News,
}

/// Flavors with their weight per mille: 35% positive, 30% negative, 35% neutral overall.
const FLAVOR_WEIGHTS: [(Flavor, u32); 8] = [
    (Flavor::Joy, 210),
    (Flavor::Optimism, 140),
    (Flavor::Anger, 100),
    (Flavor::Sadness, 80),
    (Flavor::Churn, 80),
    (Flavor::Toxic, 40),
    (Flavor::Neutral, 250),
    (Flavor::News, 100),
];
const FLAVOR_WEIGHT_TOTAL: u32 = 1000;

impl Flavor {
    pub(crate) fn pick(rng: &mut SmallRng) -> Flavor {
        let mut roll = rng.random_range(0..FLAVOR_WEIGHT_TOTAL);
        for (flavor, weight) in FLAVOR_WEIGHTS {
            if roll < weight {
                return flavor;
            }
            roll -= weight;
        }
        Flavor::Neutral
    }

    pub(crate) fn tone(self) -> Tone {
        match self {
            Flavor::Joy | Flavor::Optimism => Tone::Positive,
            Flavor::Anger | Flavor::Sadness | Flavor::Churn | Flavor::Toxic => Tone::Negative,
            Flavor::Neutral | Flavor::News => Tone::Neutral,
        }
    }

    /// Which of a language's short texts fit the flavor: churn has its own, so that intent to
    /// leave is said in every language.
    fn mood(self) -> Mood {
        match (self, self.tone()) {
            (Flavor::Churn, _) => Mood::Churn,
            (_, Tone::Positive) => Mood::Positive,
            (_, Tone::Negative) => Mood::Negative,
            (_, Tone::Neutral) => Mood::Neutral,
        }
    }

    /// The channel such a post most plausibly came through.
    pub(crate) fn channel(self, rng: &mut SmallRng) -> Channel {
        let roll = rng.random::<f64>();
        let table: &[(Channel, f64)] = match self {
            Flavor::News => &[(Channel::News, 0.85)],
            Flavor::Joy | Flavor::Optimism => &[
                (Channel::Campaign, 0.2),
                (Channel::Influencer, 0.2),
                (Channel::Support, 0.05),
            ],
            Flavor::Anger | Flavor::Sadness | Flavor::Churn | Flavor::Toxic => {
                &[(Channel::Support, 0.35), (Channel::Influencer, 0.05)]
            }
            Flavor::Neutral => &[
                (Channel::Support, 0.1),
                (Channel::Campaign, 0.1),
                (Channel::Influencer, 0.1),
            ],
        };
        let mut acc = 0.0;
        for &(channel, p) in table {
            acc += p;
            if roll < acc {
                return channel;
            }
        }
        Channel::Organic
    }

    fn templates(self) -> &'static [&'static str] {
        match self {
            Flavor::Joy => JOY,
            Flavor::Optimism => OPTIMISM,
            Flavor::Anger => ANGER,
            Flavor::Sadness => SADNESS,
            Flavor::Churn => CHURN,
            Flavor::Toxic => TOXIC,
            Flavor::Neutral => NEUTRAL,
            Flavor::News => NEWS,
        }
    }
}

/// Probabilities of the optional decorations around the core template.
const OPENER_PROB: f64 = 0.2;
const CLOSER_PROB: f64 = 0.25;
const BRAND_MENTION_PROB: f64 = 0.15;
const USER_MENTION_PROB: f64 = 0.05;
const HASHTAG_PROB: f64 = 0.55;
const PRODUCT_HASHTAG_PROB: f64 = 0.5;
const MAX_EXTRA_HASHTAGS: usize = 2;
const SPONSORED_TAG_PROB: f64 = 0.4;
const EMOJI_PROB: f64 = 0.35;
const DOUBLE_EMOJI_PROB: f64 = 0.3;
const LOWERCASE_PROB: f64 = 0.07;

/// Probability that a post from a country with its own language is written in it (the rest
/// are in English, as brand talk often is).
const LOCAL_LANGUAGE_PROB: f64 = 0.85;
/// Probability that a post without a place is written in one of the other languages, drawn
/// as the places' volumes say.
const UNPLACED_LOCAL_PROB: f64 = 0.2;

/// The language spoken in a country when it is not English.
fn local_language(country: &str) -> Option<&'static str> {
    match country {
        "ES" | "MX" => Some("es"),
        "FR" => Some("fr"),
        "DE" => Some("de"),
        "BR" => Some("pt"),
        "IT" => Some("it"),
        "NL" => Some("nl"),
        "JP" => Some("ja"),
        _ => None,
    }
}

/// What a text is about and where it is written from.
pub(crate) struct TextRequest<'a> {
    pub flavor: Flavor,
    pub product: usize,
    pub channel: Option<Channel>,
    /// City named by slots such as "the Pulse store in {city}".
    pub city: &'static str,
    pub country: Option<&'static str>,
    /// Handle of the author replied to, mentioned first.
    pub reply_to: Option<&'a str>,
    /// Handle of another user that may be mentioned.
    pub other_user: &'a str,
    /// What a scenario wave is about, added to every post of it.
    pub topic: Option<&'static str>,
}

/// Writes a post text into `out` (cleared first) and returns its language code.
pub(crate) fn compose(
    rng: &mut SmallRng,
    request: &TextRequest<'_>,
    out: &mut String,
) -> &'static str {
    out.clear();
    let tone = request.flavor.tone();
    let mut slots = Slots::new(&PRODUCTS[request.product], request.city);
    if let Some(handle) = request.reply_to {
        out.push('@');
        out.push_str(handle);
        out.push(' ');
    }

    let local = match request.country {
        Some(country) => local_language(country).filter(|_| rng.random_bool(LOCAL_LANGUAGE_PROB)),
        None if rng.random_bool(UNPLACED_LOCAL_PROB) => {
            let total: u32 = UNPLACED_LANGUAGES.iter().map(|(_, w)| w).sum();
            let mut at = rng.random_range(0..total);
            UNPLACED_LANGUAGES.iter().find_map(|(lang, w)| {
                if at < *w {
                    Some(*lang)
                } else {
                    at -= w;
                    None
                }
            })
        }
        None => None,
    };
    if let Some(lang) = local {
        let mood = request.flavor.mood();
        let templates = LOCAL_TEXTS
            .iter()
            .find(|(l, _, m)| *l == lang && *m == mood)
            .map(|(_, templates, _)| *templates)
            .unwrap_or(&[]);
        if !templates.is_empty() {
            let template = pick(rng, templates);
            render(rng, template, &mut slots, out);
            if rng.random_bool(BRAND_MENTION_PROB) {
                out.push(' ');
                out.push_str(pick(rng, &BRAND_MENTIONS));
            }
            if rng.random_bool(HASHTAG_PROB) {
                out.push(' ');
                out.push_str(slots.product.hashtag);
            }
            push_topic(request, out);
            push_emoji(rng, tone, out);
            return lang;
        }
    }

    let body_start = out.len();
    let mut continues = false;
    if rng.random_bool(OPENER_PROB) {
        let openers = tone.words().openers;
        let (opener, lower) = openers[rng.random_range(0..openers.len())];
        out.push_str(opener);
        continues = lower;
    }
    let core_start = out.len();
    let template = pick(rng, request.flavor.templates());
    render(rng, template, &mut slots, out);
    if continues {
        lowercase_first_word(out, core_start);
    }
    if request.flavor != Flavor::News && rng.random_bool(CLOSER_PROB) {
        if !out.ends_with(['.', '!', '?']) {
            out.push('.');
        }
        out.push_str(pick(rng, tone.words().closers));
    }
    if rng.random_bool(LOWERCASE_PROB) {
        let lowered = out[body_start..].to_lowercase();
        out.truncate(body_start);
        out.push_str(&lowered);
    }
    if rng.random_bool(BRAND_MENTION_PROB) {
        out.push(' ');
        out.push_str(pick(rng, &BRAND_MENTIONS));
    }
    if rng.random_bool(USER_MENTION_PROB) {
        out.push_str(" cc @");
        out.push_str(request.other_user);
    }
    if rng.random_bool(HASHTAG_PROB) {
        if rng.random_bool(PRODUCT_HASHTAG_PROB) {
            out.push(' ');
            out.push_str(slots.product.hashtag);
        }
        let tags = match request.flavor {
            Flavor::Churn => &CHURN_TAGS[..],
            _ => tone.words().tags,
        };
        // Distinct tags: consecutive entries from a random starting point.
        let first = rng.random_range(0..tags.len());
        for i in 0..rng.random_range(0..=MAX_EXTRA_HASHTAGS.min(tags.len())) {
            out.push(' ');
            out.push_str(tags[(first + i) % tags.len()]);
        }
        let sponsored = matches!(
            request.channel,
            Some(Channel::Campaign | Channel::Influencer)
        );
        if sponsored && rng.random_bool(SPONSORED_TAG_PROB) {
            out.push(' ');
            out.push_str(pick(rng, &SPONSORED_TAGS));
        }
    }
    push_topic(request, out);
    push_emoji(rng, tone, out);
    "en"
}

fn push_topic(request: &TextRequest<'_>, out: &mut String) {
    if let Some(topic) = request.topic {
        out.push_str(" — ");
        out.push_str(topic);
    }
}

fn push_emoji(rng: &mut SmallRng, tone: Tone, out: &mut String) {
    if rng.random_bool(EMOJI_PROB) {
        out.push(' ');
        out.push_str(pick(rng, tone.words().emoji));
        if rng.random_bool(DOUBLE_EMOJI_PROB) {
            out.push_str(pick(rng, tone.words().emoji));
        }
    }
}

/// Lower-cases the first letter at `start`, unless the word must stay capitalised
/// ("I", "I'm", brand and product names).
fn lowercase_first_word(out: &mut String, start: usize) {
    let word = out[start..].split(' ').next().unwrap_or("");
    let keep = word == "I" || word.starts_with("I'") || word.starts_with("Pulse");
    if keep {
        return;
    }
    if let Some(first) = out[start..].chars().next() {
        if first.is_ascii_uppercase() {
            out.replace_range(start..start + 1, &first.to_ascii_lowercase().to_string());
        }
    }
}

fn pick<'a>(rng: &mut SmallRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

/// Slot values that must stay the same within one text (its product name and feature).
struct Slots {
    product: &'static Product,
    product_name: Option<&'static str>,
    feature: Option<&'static str>,
    city: &'static str,
}

impl Slots {
    fn new(product: &'static Product, city: &'static str) -> Self {
        Slots {
            product,
            product_name: None,
            feature: None,
            city,
        }
    }

    fn fill(&mut self, rng: &mut SmallRng, name: &str, out: &mut String) {
        let value = match name {
            "product" => *self
                .product_name
                .get_or_insert_with(|| pick(rng, self.product.names)),
            "feature" => *self
                .feature
                .get_or_insert_with(|| pick(rng, self.product.features)),
            "product_kind" => self.product.kind,
            "issue" => pick(rng, self.product.issues),
            "competitor" => pick(rng, &COMPETITORS),
            "pos" | "Pos" => pick(rng, &POSITIVE_ADJECTIVES),
            "neg" => pick(rng, &NEGATIVE_ADJECTIVES),
            "past" => pick(rng, &PAST_TIMES),
            "since" => pick(rng, &SINCE_TIMES),
            "future" => pick(rng, &FUTURE_TIMES),
            "service" | "Service" => pick(rng, &SERVICE_DESKS),
            "insult" => pick(rng, &INSULTS),
            "curse" => pick(rng, &CURSES),
            "price" => pick(rng, &PRICES),
            "version" => pick(rng, &VERSIONS),
            "hours" => pick(rng, &HOURS),
            "progress" => {
                // Fillers may hold slots of their own (a number).
                let filler = pick(rng, &PROGRESS);
                render(rng, filler, self, out);
                return;
            }
            "city" => self.city,
            "n" => {
                push_number(out, rng.random_range(2..=14));
                return;
            }
            "quarter" => {
                push_number(out, rng.random_range(1..=4));
                return;
            }
            _ => {
                debug_assert!(false, "unknown template slot {name}");
                return;
            }
        };
        if name.starts_with(|c: char| c.is_ascii_uppercase()) {
            push_capitalized(out, value);
        } else {
            out.push_str(value);
        }
    }
}

fn push_number(out: &mut String, n: u32) {
    use std::fmt::Write;
    let _ = write!(out, "{n}");
}

fn push_capitalized(out: &mut String, value: &str) {
    let mut chars = value.chars();
    if let Some(first) = chars.next() {
        out.extend(first.to_uppercase());
        out.push_str(chars.as_str());
    }
}

/// Copies `template` into `out`, replacing each `{slot}` with a filler.
fn render(rng: &mut SmallRng, template: &str, slots: &mut Slots, out: &mut String) {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        slots.fill(rng, &rest[open + 1..open + close], out);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn all_templates() -> impl Iterator<Item = &'static str> {
        [JOY, OPTIMISM, ANGER, SADNESS, CHURN, TOXIC, NEUTRAL, NEWS]
            .into_iter()
            .flatten()
            .copied()
            .chain(LOCAL_TEXTS.iter().flat_map(|(_, t, _)| t.iter().copied()))
    }

    #[test]
    fn every_template_fills_every_slot() {
        let mut rng = SmallRng::seed_from_u64(1);
        for template in all_templates() {
            for product in &PRODUCTS {
                for _ in 0..20 {
                    let mut out = String::new();
                    let mut slots = Slots::new(product, "Paris");
                    // Unknown slots trip a debug assertion inside `fill`.
                    render(&mut rng, template, &mut slots, &mut out);
                    assert!(!out.contains(['{', '}']), "{template} -> {out}");
                    assert!(!out.contains("  "), "{template} -> {out}");
                }
            }
        }
    }

    #[test]
    fn flavor_weights_cover_the_tone_mix() {
        let total: u32 = FLAVOR_WEIGHTS.iter().map(|(_, w)| w).sum();
        assert_eq!(total, FLAVOR_WEIGHT_TOTAL);
        let share = |tone| {
            let w: u32 = FLAVOR_WEIGHTS
                .iter()
                .filter(|(f, _)| f.tone() == tone)
                .map(|(_, w)| w)
                .sum();
            f64::from(w) / f64::from(total)
        };
        assert!((share(Tone::Positive) - 0.35).abs() < 0.01);
        assert!((share(Tone::Negative) - 0.30).abs() < 0.01);
        assert!((share(Tone::Neutral) - 0.35).abs() < 0.01);
    }

    #[test]
    fn continuing_openers_lowercase_only_ordinary_words() {
        for (opened, continued) in [
            ("Ngl The thing", "Ngl the thing"),
            ("Ngl I'm done", "Ngl I'm done"),
            ("Ngl Pulse devs", "Ngl Pulse devs"),
        ] {
            let mut s = opened.to_string();
            lowercase_first_word(&mut s, 4);
            assert_eq!(s, continued);
        }
    }
}
