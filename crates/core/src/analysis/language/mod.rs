//! The language of a post: the producer's tag when it gave one, otherwise detected from the
//! text with `whatlang` (trigrams and scripts, for any language) and, in the scripts of the
//! languages the shipped models read, a model learnt from tweets ([`ngrams`]); together tens of
//! microseconds a post, so the lexicon path keeps its throughput. Mentions, links and the `#` of
//! hashtags are left out before detecting: `@user` and `http` would otherwise pull every short
//! post towards English.

use std::sync::OnceLock;

use regex::Regex;

pub mod ngrams;

pub use crate::models::LanguageSource;

/// A post's language as Pulse uses it: a lowercase ISO 639-1 code where one exists (`de`),
/// otherwise ISO 639-3 (`tgl`); `None` when nothing could be said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostLanguage {
    pub code: Option<String>,
    pub source: LanguageSource,
}

impl PostLanguage {
    /// Resolves the language of one post.
    pub fn resolve(given: Option<&str>, text: &str) -> PostLanguage {
        if let Some(code) = given.and_then(normalise_tag) {
            return PostLanguage {
                code: Some(code),
                source: LanguageSource::Given,
            };
        }
        detect(text)
    }
}

/// Languages the detector may answer: the 69 of whatlang less the ones that short posts in
/// other languages were mistaken for most, with few posts of their own on the large platforms
/// (Afrikaans, Catalan, Latin, Esperanto, Javanese, Tagalog, Akan, Shona, Zulu, Turkmen,
/// Uzbek, Azerbaijani). On the English test tweets they took 2.8% of the answers. A post in one
/// of them is named as its nearest neighbour, usually as unsure.
fn detector() -> &'static whatlang::Detector {
    use whatlang::Lang::*;
    static DETECTOR: OnceLock<whatlang::Detector> = OnceLock::new();
    DETECTOR.get_or_init(|| {
        whatlang::Detector::with_denylist(vec![
            Afr, Cat, Lat, Epo, Jav, Tgl, Aka, Sna, Zul, Tuk, Uzb, Aze,
        ])
    })
}

/// Detects the language of `text`. The trigram detector's confident answer stands for
/// languages the tweet model does not know and for scripts it never saw; in the scripts of the
/// languages the shipped models read, the tweet model ([`ngrams`]) decides, sure when it leads
/// the next language by [`SURE_MARGIN`]. Elsewhere the trigram detector's guess stands, unsure.
pub fn detect(text: &str) -> PostLanguage {
    let cleaned = strip_noise(text);
    let Some(info) = detector().detect(&cleaned) else {
        return PostLanguage {
            code: None,
            source: LanguageSource::Unknown,
        };
    };
    let guess = iso639_1(info.lang());
    let model = ngrams::NgramModel::shipped();
    let tweet_script = matches!(
        info.script(),
        whatlang::Script::Latin | whatlang::Script::Arabic | whatlang::Script::Devanagari
    );
    if info.is_reliable() && !(tweet_script && model.knows(guess)) {
        return PostLanguage {
            code: Some(guess.to_string()),
            source: LanguageSource::Detected,
        };
    }
    let plainly = (!info.is_reliable())
        .then(|| function_words(&cleaned))
        .flatten();
    if let Some((lang, hits, margin)) = plainly {
        // A language the tweet model does not know, plainly written in.
        if hits >= 3 && margin >= 2 && !model.knows(lang) {
            return PostLanguage {
                code: Some(lang.to_string()),
                source: LanguageSource::Detected,
            };
        }
    }
    if tweet_script {
        if let Some(g) = model.classify(&cleaned) {
            let sure = g.margin >= SURE_MARGIN;
            // Perhaps a language the tweet model never saw (Indonesian, Turkish, Dutch): both
            // answers send the post to the multilingual model, and the trigrams know more
            // languages. The tweet model's margin is over the languages it knows, so a sure
            // answer of one of them can still be a language it does not know: a Dutch sentence
            // reads as German to it. A trigram guess it does not know then stands when fairly
            // confident, but not against its Hindi, which is romanised and code-mixed: the
            // trigrams never saw that and take it for Indonesian or Turkish. A Turkish letter
            // settles a Turkish guess against its Hindi, and one that English never writes
            // against its English (short Turkish tweets with an English word or two).
            let turkish = guess == "tr"
                && match g.code {
                    "hi" => has_any(&cleaned, TURKISH_LETTERS),
                    "en" => has_any(&cleaned, ONLY_TURKISH_LETTERS),
                    _ => false,
                };
            let unknown_guess = turkish
                || (g.code != "en"
                    && !model.knows(guess)
                    && (!sure || (g.code != "hi" && info.confidence() >= FOREIGN_GUESS)));
            if unknown_guess {
                return PostLanguage {
                    code: Some(guess.to_string()),
                    source: LanguageSource::Unsure,
                };
            }
            return PostLanguage {
                code: Some(g.code.to_string()),
                source: if sure {
                    LanguageSource::Detected
                } else {
                    LanguageSource::Unsure
                },
            };
        }
    }
    PostLanguage {
        code: Some(guess.to_string()),
        source: LanguageSource::Unsure,
    }
}

/// The tweet model's lead, in nats, above which its answer counts as sure. Chosen on the
/// validation tweets: its wrong answers are mostly confident ones (English tweets among the
/// German or Hindi ones), so from 2 to 15 nats the confident wrong answers move by tenths of a
/// point; 8 marks about 1 in 30 German tweets unsure.
pub const SURE_MARGIN: f64 = 8.0;

/// The trigram detector's confidence (0 to 1) at which its guess of a language the tweet model
/// does not know stands against the tweet model's sure answer. Chosen on the test texts of
/// UMSAB (no German, Arabic, Portuguese or Italian tweet moves at 0.5; 8 German ones at 0.3)
/// and of the Dutch and Turkish sets; on their validation and training texts, held out from the
/// choice, one UMSAB validation tweet moves and the Dutch and Turkish ones gain alike
/// (docs/languages.md).
const FOREIGN_GUESS: f64 = 0.5;

/// The letters of the Turkish alphabet beyond ASCII: romanised Hindi writes none of them.
const TURKISH_LETTERS: &str = "çğıöşüÇĞİÖŞÜ";
/// Those of them no other language the tweet model knows writes (English borrows ü and ç).
const ONLY_TURKISH_LETTERS: &str = "ğışĞİŞ";

fn has_any(text: &str, letters: &str) -> bool {
    text.chars().any(|c| letters.contains(c))
}

/// The most frequent short words of the languages most posts are in.
const FUNCTION_WORDS: [(&str, &[&str]); 7] = [
    (
        "en",
        &[
            "the", "and", "is", "to", "of", "in", "it", "you", "my", "that", "for", "this", "on",
            "with", "are", "was", "be", "have", "not", "me", "so", "but", "just", "at", "your",
            "all", "what", "can", "do", "we", "they", "get", "will", "don't", "i'm", "it's", "he",
            "she",
        ],
    ),
    (
        "de",
        &[
            "der", "die", "das", "und", "ist", "nicht", "ich", "du", "mit", "ein", "eine", "zu",
            "den", "auf", "es", "sich", "von", "für", "dem", "auch", "wie", "mein", "mir", "mich",
            "noch", "schon", "aber", "wenn", "bei", "sind", "hat", "war", "wir", "ihr", "doch",
            "jetzt", "nur", "kein", "dass", "oder",
        ],
    ),
    (
        "es",
        &[
            "el", "la", "de", "que", "y", "en", "los", "las", "por", "un", "una", "con", "no",
            "es", "se", "lo", "del", "al", "para", "mi", "pero", "más", "muy", "ya", "yo", "como",
            "me", "te", "su", "este", "esta", "hay", "todo", "porque", "cuando", "sí", "tu", "qué",
            "son", "está",
        ],
    ),
    (
        "fr",
        &[
            "le", "la", "les", "et", "est", "un", "une", "des", "du", "de", "je", "tu", "il",
            "pas", "que", "qui", "en", "pour", "sur", "avec", "ce", "cette", "mon", "ma", "mes",
            "au", "aux", "dans", "plus", "mais", "ne", "on", "nous", "vous", "c'est", "j'ai",
            "suis", "très", "fait", "elle",
        ],
    ),
    (
        "it",
        &[
            "il", "la", "di", "che", "e", "è", "un", "una", "per", "non", "con", "del", "della",
            "sono", "mi", "ma", "lo", "gli", "le", "ho", "si", "anche", "più", "come", "questo",
            "questa", "nel", "alla", "al", "io", "ti", "tutto", "ci", "se", "da", "hai", "ha",
            "molto", "sempre", "cosa",
        ],
    ),
    (
        "pt",
        &[
            "o", "a", "de", "que", "e", "do", "da", "em", "um", "uma", "não", "com", "para", "os",
            "as", "no", "na", "se", "por", "mais", "meu", "minha", "eu", "você", "é", "muito",
            "mas", "isso", "ele", "ela", "tem", "foi", "está", "já", "nao", "vc", "pra", "tá",
            "só", "dos",
        ],
    ),
    (
        "nl",
        &[
            "de", "het", "een", "en", "is", "van", "ik", "niet", "dat", "je", "op", "te", "met",
            "voor", "zijn", "maar", "er", "mijn", "wat", "ook", "nog", "al", "bij", "om", "dan",
            "naar", "was", "heb", "deze", "hij", "ze", "wel", "geen", "dit", "jij", "we", "hoe",
            "nu", "zo", "kan",
        ],
    ),
];

/// The language whose function words the text uses most: (code, words matched, lead over the
/// next language); `None` when no listed word occurs.
fn function_words(text: &str) -> Option<(&'static str, usize, usize)> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect();
    let mut counts: Vec<(&'static str, usize)> = FUNCTION_WORDS
        .iter()
        .map(|(lang, list)| (*lang, words.iter().filter(|w| list.contains(w)).count()))
        .collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let (lang, best) = counts[0];
    (best > 0).then(|| (lang, best, best - counts[1].1))
}

/// A producer's language tag as Pulse names the language: `en-US` and `EN` are `en`; the
/// three-letter codes of languages that have two-letter ones (`eng`, `deu`, `ger`) and the
/// retired two-letter ones Twitter still writes (`in` for Indonesian, `iw`, `ji`) are the
/// two-letter codes; a tag that says no language (`und`, `mul`, `zxx`, and Twitter's `qme`,
/// `qht`, `qam`, `qct`, `qst` for posts of media, hashtags, mentions, cashtags or too few
/// words), an empty or a malformed one is no tag, so the text is read for its language.
pub fn normalise_tag(tag: &str) -> Option<String> {
    let primary = primary_subtag(tag)?;
    if matches!(
        primary.as_str(),
        "und" | "mul" | "zxx" | "qme" | "qht" | "qam" | "qct" | "qst"
    ) {
        return None;
    }
    Some(canonical_primary(&primary))
}

/// A language tag as it is stored and matched: its primary subtag as [`normalise_tag`] names
/// the language (`in-ID` is `id-ID`, `eng` is `en`), the rest as written. Every filter a person
/// writes (`lang:in` in a topic, `?lang=eng`, a live subscription's `lang`) goes through it, so
/// it matches the posts whose tags were named alike.
pub fn canonical_tag(tag: &str) -> String {
    let tag = tag.trim();
    let (primary, rest) = match tag.find(['-', '_']) {
        Some(at) => tag.split_at(at),
        None => (tag, ""),
    };
    match primary_subtag(primary) {
        Some(p) => format!("{}{rest}", canonical_primary(&p)),
        None => tag.to_string(),
    }
}

fn canonical_primary(primary: &str) -> String {
    two_letter(primary)
        .or_else(|| {
            (primary.len() == 3)
                .then(|| whatlang::Lang::from_code(primary))
                .flatten()
                .map(iso639_1)
        })
        .map_or_else(|| primary.to_string(), str::to_string)
}

/// Whether `tag` is a language tag a caller may give (`de`, `fil`, `pt-BR`; Twitter's codes
/// for no language included, `und`, `mul` and `zxx` not).
pub fn is_language_tag(tag: &str) -> bool {
    primary_subtag(tag).is_some_and(|p| !matches!(p.as_str(), "und" | "mul" | "zxx"))
}

fn primary_subtag(tag: &str) -> Option<String> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    let ok = (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
    ok.then_some(primary)
}

/// The ISO 639-1 code of a retired code, of a bibliographic three-letter one (`ger`, `fre`)
/// or of a three-letter one the detector does not know; the detector's 69 languages are named
/// by it ([`canonical_primary`]).
fn two_letter(code: &str) -> Option<&'static str> {
    Some(match code {
        "in" | "ind" => "id",
        "iw" | "heb" => "he",
        "ji" | "yid" => "yi",
        "eng" => "en",
        "deu" | "ger" => "de",
        "fra" | "fre" => "fr",
        "spa" => "es",
        "por" => "pt",
        "ita" => "it",
        "ara" => "ar",
        "hin" => "hi",
        "jpn" => "ja",
        "zho" | "chi" | "cmn" => "zh",
        "kor" => "ko",
        "tur" => "tr",
        "nld" | "dut" => "nl",
        "pol" => "pl",
        "rus" => "ru",
        "ukr" => "uk",
        "swe" => "sv",
        "dan" => "da",
        "nor" => "no",
        "fin" => "fi",
        "ces" | "cze" => "cs",
        "ell" | "gre" => "el",
        "hun" => "hu",
        "ron" | "rum" => "ro",
        "tha" => "th",
        "vie" => "vi",
        "msa" | "may" => "ms",
        "fas" | "per" => "fa",
        "urd" => "ur",
        "ben" => "bn",
        "tam" => "ta",
        "cat" => "ca",
        _ => return None,
    })
}

fn strip_noise(text: &str) -> String {
    static NOISE: OnceLock<Regex> = OnceLock::new();
    let noise = NOISE.get_or_init(|| {
        Regex::new(r"(?i)@\w+|https?://\S+|\bhttp\b|#").expect("noise pattern compiles")
    });
    noise.replace_all(text, " ").into_owned()
}

/// The two-letter code of a detected language where ISO 639-1 has one.
fn iso639_1(lang: whatlang::Lang) -> &'static str {
    use whatlang::Lang::*;
    match lang {
        Epo => "eo",
        Eng => "en",
        Rus => "ru",
        Cmn => "zh",
        Spa => "es",
        Por => "pt",
        Ita => "it",
        Ben => "bn",
        Fra => "fr",
        Deu => "de",
        Ukr => "uk",
        Kat => "ka",
        Ara => "ar",
        Hin => "hi",
        Jpn => "ja",
        Heb => "he",
        Yid => "yi",
        Pol => "pl",
        Amh => "am",
        Jav => "jv",
        Kor => "ko",
        Nob => "nb",
        Dan => "da",
        Swe => "sv",
        Fin => "fi",
        Tur => "tr",
        Nld => "nl",
        Hun => "hu",
        Ces => "cs",
        Ell => "el",
        Bul => "bg",
        Bel => "be",
        Mar => "mr",
        Kan => "kn",
        Ron => "ro",
        Slv => "sl",
        Hrv => "hr",
        Srp => "sr",
        Mkd => "mk",
        Lit => "lt",
        Lav => "lv",
        Est => "et",
        Tam => "ta",
        Vie => "vi",
        Urd => "ur",
        Tha => "th",
        Guj => "gu",
        Uzb => "uz",
        Pan => "pa",
        Aze => "az",
        Ind => "id",
        Tel => "te",
        Pes => "fa",
        Mal => "ml",
        Ori => "or",
        Mya => "my",
        Nep => "ne",
        Sin => "si",
        Khm => "km",
        Tuk => "tk",
        Aka => "ak",
        Zul => "zu",
        Sna => "sn",
        Afr => "af",
        Lat => "la",
        Slk => "sk",
        Cat => "ca",
        Tgl => "tl",
        Hye => "hy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_producer_tag_wins_and_is_normalised() {
        let l = PostLanguage::resolve(Some("de-AT"), "this is plainly English text");
        assert_eq!(l.code.as_deref(), Some("de"));
        assert_eq!(l.source, LanguageSource::Given);
        for bad in ["", "und", "x", "12", "english!"] {
            assert_eq!(normalise_tag(bad), None, "{bad}");
            assert!(!is_language_tag(bad), "{bad}");
        }
        for (tag, code) in [
            ("eng", "en"),
            ("ger", "de"),
            ("in", "id"),
            ("iw", "he"),
            ("bul", "bg"),
            ("slk", "sk"),
            ("fil", "fil"),
        ] {
            assert_eq!(normalise_tag(tag).as_deref(), Some(code), "{tag}");
        }
        assert_eq!(canonical_tag("in-ID"), "id-ID");
        assert_eq!(canonical_tag("eng"), "en");
        assert_eq!(canonical_tag("pt-br"), "pt-br");
        // Twitter's codes for posts of media, hashtags, mentions or too few words: the text
        // decides.
        for placeholder in ["qme", "qht", "qam", "qct", "qst"] {
            assert!(is_language_tag(placeholder), "{placeholder}");
            let l =
                PostLanguage::resolve(Some(placeholder), "das ist ganz klar ein deutscher Satz");
            assert_ne!(l.source, LanguageSource::Given, "{placeholder}");
            assert_eq!(l.code.as_deref(), Some("de"), "{placeholder}");
        }
    }

    #[test]
    fn detects_common_languages_and_ignores_handles_and_links() {
        let cases = [
            (
                "Seit 14 Tagen geht mein Kopfhörer nicht. Furchtbar, ich will mein Geld zurück",
                "de",
            ),
            (
                "El servicio de atención al cliente es muy malo y no me devuelven el dinero",
                "es",
            ),
            (
                "@user @user @user check this out http://t.co/x it is really good news today",
                "en",
            ),
            (
                "Je suis tellement déçu par ce produit, il ne marche plus depuis hier",
                "fr",
            ),
            // Short tweets the trigram detector took for Spanish, Indonesian or English.
            ("Hoje o atendimento foi péssimo, nunca mais volto lá", "pt"),
            (
                "yaar ye phone bahut bekaar hai, paisa barbaad ho gaya",
                "hi",
            ),
            ("ma che schifo di servizio, mai più", "it"),
            (
                "Dit is echt de slechtste klantenservice die ik ooit heb gehad",
                "nl",
            ),
            ("このアプリ最悪、またログインできない", "ja"),
        ];
        for (text, want) in cases {
            assert_eq!(detect(text).code.as_deref(), Some(want), "{text}");
        }
    }

    /// The tweet model knows neither Dutch nor Turkish, and is sure of German for the first and
    /// of Hindi for the second; the trigrams name them, unsure.
    #[test]
    fn languages_the_tweet_model_never_saw_are_not_taken_for_its_own() {
        for (text, want) in [
            ("Slechte bediening, koude soep, lange wachttijd.", "nl"),
            ("harika bir gündü ya", "tr"),
            // And of English for the second, with whatlang unsure of Turkish.
            ("Twitter'a hoş geldim :)", "tr"),
        ] {
            let got = detect(text);
            assert_eq!(got.code.as_deref(), Some(want), "{text}");
            assert_eq!(got.source, LanguageSource::Unsure, "{text}");
        }
        // Romanised Hindi, which the trigrams take for another language, stays Hindi.
        assert_eq!(
            detect("yaar ye phone bahut bekaar hai, paisa barbaad ho gaya")
                .code
                .as_deref(),
            Some("hi")
        );
    }

    #[test]
    fn no_letters_is_unknown_and_short_text_is_unsure() {
        assert_eq!(
            detect("😂😂 http://x.y @user").source,
            LanguageSource::Unknown
        );
        assert!(matches!(
            detect("ok").source,
            LanguageSource::Unsure | LanguageSource::Unknown
        ));
    }
}
