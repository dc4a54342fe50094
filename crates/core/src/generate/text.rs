//! Template-based post texts with a known tone and emotion.
//!
//! A text is one core template (picked by [`Flavor`]) with its slots filled, optionally wrapped
//! in an opener, a closing remark, @mentions, hashtags and emoji. Sentiment is carried by
//! ordinary words ("love", "terrible", "disappointed") so lexicon analyzers read it the way a
//! person would; neutral templates avoid such words.
//!
//! Most of its length is the template tables (one per flavor and language); the code that fills
//! them follows the tables.

use rand::rngs::SmallRng;
use rand::Rng;

use super::world::{Channel, Product, PRODUCTS};

/// The polarity a text was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tone {
    Positive,
    Negative,
    Neutral,
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

const JOY: &[&str] = &[
    "Absolutely love my new {product}! The {feature} is {pos}.",
    "The {feature} on the {product} is {pos}, so happy with it",
    "Got the {product} {past} and I'm loving it. {Pos} {feature}!",
    "Shoutout to {service} for sorting my {product} out in {n} minutes. Great service!",
    "Best purchase of the year: {product}. {Pos} {feature} and it looks beautiful",
    "I expected little but the {product} is genuinely {pos}",
    "Wow. The {feature} on my {product} is {pos}. Thank you Pulse!",
    "{n} days with the {product} and I'm impressed. The {feature} is {pos}",
    "My {product} arrived {past} and it's perfect, the {feature} is {pos}",
    "So glad I picked the {product} over the {competitor} one, the {feature} is way better",
    "Pulse nailed it with the {product}. Smooth, fast, and the {feature} is {pos}",
    "Smiling all day, the {product} {feature} is just {pos}",
    "Huge thanks to the Pulse store in {city}, super friendly staff and my {product} is awesome",
    "Just upgraded to the {product} and wow, everything feels {pos}",
    "The latest {product} update fixed the {feature}. Love it, great job Pulse",
    "Honestly the {product} is the best gadget I own. {Pos}!",
    "My kids love the {product}, and the {feature} is {pos} too",
    "Never been this happy with a {product_kind}. {Pos} work, Pulse",
    "The {feature} alone makes the {product} worth it. Fantastic value",
    "Really enjoying the {product}, the {feature} is a delight",
];

const OPTIMISM: &[&str] = &[
    "Really hopeful the next {product} update improves the {feature}. Pulse usually delivers",
    "So excited for the new {product} launch {future}! Looking forward to it",
    "Excited to try the {product} {feature} everyone is talking about",
    "The {product} roadmap looks promising. Confident they'll get the {feature} right",
    "Preordered the {product} {past}. Hope the {feature} lives up to the hype, looks great so far",
    "Things are looking up for Pulse, the {product} beta is a big improvement",
    "Counting down to {future}, the new {product} drops and I'm so excited",
    "Pulse says a fix for the {feature} is coming {future}. Feeling optimistic!",
    "Heard the {product} is getting a better {feature} soon. Fingers crossed, this could be great",
    "The future of the {product} looks bright. Good things coming",
    "Finally some good news: {product} {feature} improvements are on the way",
    "I believe the {product} will win people over once the {feature} update lands",
    "Hopeful that {future} brings the {product} {feature} upgrade we were promised",
    "Feeling positive about the {product} after the preview, the {feature} looks {pos}",
    "Optimistic the {product} will be my next upgrade, the early {feature} reviews are encouraging",
    "Eager to see what Pulse shows {future}, rumors say the {product} gets a new {feature}",
];

const ANGER: &[&str] = &[
    "My {product} {issue} {past}. This is unacceptable!",
    "Absolutely furious. {Service} hung up on me twice about my broken {product}",
    "The {feature} on the {product} is {neg}. Why is this so hard to get right?",
    "Fed up with the {product}. It {issue}, and nobody at Pulse even replies. Ridiculous",
    "{n} hours on hold with {service}. Ridiculous. Terrible service",
    "Paid {price} for a {product} that {issue}. So angry right now",
    "Pulse, fix your {feature}! The {product} is a complete failure right now",
    "Worst update ever. My {product} {issue} since {since}",
    "How is the {product} {feature} still this bad? Sick of waiting for a fix",
    "Third replacement {product} and it still {issue}. I'm so angry",
    "Hate how the {product} {issue}. Awful quality control",
    "Stop ignoring us Pulse. The {feature} bug is ruining the {product}",
    "Unbelievable. My {product} {issue} and {service} just blames me",
    "Outraged. A {price} {product_kind} that {issue}, what a shameful product",
    "The {product} {feature} is {neg} and the new update made it worse. Furious",
    "Why does my {product} keep doing this?! It {issue} every single day. Infuriating",
];

const SADNESS: &[&str] = &[
    "Really sad that my {product} {issue}. Feeling so low",
    "Heartbroken, my {product} died {past} and I lost all my data",
    "Miss the old {product}. The new {feature} just feels worse",
    "Disappointed with the {product}. Expected so much more from Pulse",
    "Feeling down. I waited months for the {product} and it {issue}, which makes me so sad",
    "Another day, another {product} problem. It's depressing honestly",
    "Used to be a fan of Pulse. Now the {product} just makes me sad and miserable",
    "Lost my {product} settings after the update. Gutted, so unhappy",
    "My {product} stopped working {past} and I feel miserable",
    "It hurts to say it but the {product} has been a letdown. Sad",
    "Sad to see the {product} {feature} go downhill like this",
    "Lonely evening, my {product} {issue} and I have nobody to ask. So sad",
    "Such a shame, the {product} {feature} was my favorite thing. Now it's bad",
    "Sorry Pulse, I'm really disappointed. The {product} {issue} again",
];

const CHURN: &[&str] = &[
    "That's it, I'm cancelling my subscription. The {product} {issue} one time too many. Awful",
    "Switching to {competitor}. Pulse clearly doesn't care about {product} owners. Terrible",
    "I want a refund for my {product}. It {issue} and {service} is useless",
    "Closing my account today. Done with Pulse and the awful {feature}",
    "Seriously thinking about switching to {competitor} after this {product} mess. Disappointed",
    "Returned my {product}, want a refund ASAP. Terrible experience",
    "Cancelling my subscription, the {product} {feature} keeps failing. Worst service",
    "Goodbye Pulse. {competitor} it is. Cancelling my subscription tonight, the {product} was so disappointing",
    "If the {feature} is still broken {future} I'm closing my account. Fed up and disappointed",
    "Already ordered a {competitor} instead. Bye {product}, I hate that it came to this",
    "How do I cancel my Pulse plan? Want a refund, the {product} is broken",
    "After {n} weeks of this I'm switching to {competitor}. Bad product, worse service",
    "Closing my account and switching to {competitor}. Awful experience, the {product} {issue}",
    "Requesting a refund for the {product}. Never buying Pulse again, horrible",
];

const TOXIC: &[&str] = &[
    "Pathetic. Pulse devs are a bunch of {insult}. The {product} {issue} AGAIN",
    "What a {curse} joke. Whoever designed the {product} {feature} is an idiot",
    "{Service} are clueless {insult}. Worst company ever",
    "Total crap. This {curse} {product} {issue}",
    "Shut up about the {product} already, it sucks and it's crap",
    "Pulse marketing team are {insult}. The {product} is garbage and it sucks",
    "Screw the {product} and screw {service}, {curse} useless",
    "Only {insult} would pay {price} for this piece of crap {product_kind}",
    "The {product} {feature} is trash and the {insult} at Pulse are useless. Damn it",
    "Stupid {product} {issue} again. What a bunch of {insult}",
];

const NEUTRAL: &[&str] = &[
    "Just got the {product} {past}, setting it up now",
    "Anyone know how the {feature} on the {product} compares to {competitor}?",
    "Comparing the {product} and the {competitor} equivalent this weekend. Specs thread below",
    "Is the {product} {feature} different from last year's model?",
    "Unboxing the {product} on stream {future}",
    "Pulse store in {city} has the {product} in stock again",
    "Question for {product} owners: how long does the {feature} take to set up?",
    "The {product} costs {price} in the US, other regions TBA",
    "Reading the {product} manual, section on the {feature}, {progress}",
    "Does the {product} work with {competitor} accessories?",
    "Moving my stuff from my old {product_kind} to the {product}, {progress}",
    "Saw a {product} billboard at the train station in {city}",
    "Which {product} color did you all go with? Ordering {future}",
    "{Service} hours for {product} owners changed to {hours}",
    "Where is the {feature} setting on the {product}? Can't find it since {since}",
    "Thinking about getting the {product} {future}. Which size do people use for the {feature}?",
    "Is there a {product} case with a cutout for the {feature}?",
    "Waiting for my {product} order to ship, tracking says {future}",
    "Does the {product} {feature} need an account to use?",
    "Testing the {product} {feature} against my old {product_kind} today",
];

const NEWS: &[&str] = &[
    "Pulse unveils the {product} with a redesigned {feature}",
    "Pulse announces a {product} event for {future}",
    "{product} firmware {version} is rolling out {future}",
    "Pulse to open a new office in {city} {future}, per company statement",
    "Pulse Q{quarter} earnings call scheduled for {future}",
    "Report: Pulse ships {product} in {n} new markets this quarter",
    "Pulse confirms {product} pricing starts at {price}",
    "The {product} is now available in {city} stores",
    "Pulse publishes {product} {feature} specs ahead of launch",
    "Analysts expect {product} sales figures at the Q{quarter} call",
    "Pulse lists {product} {feature} changes in firmware {version} notes",
    "Pulse schedules maintenance for {product} services {future}",
];

const COMPETITORS: [&str; 6] = ["Orbit", "Nimbus", "Vertex", "Zephyr", "Halo", "Kestrel"];
const POSITIVE_ADJECTIVES: [&str; 12] = [
    "amazing",
    "great",
    "awesome",
    "fantastic",
    "excellent",
    "brilliant",
    "superb",
    "wonderful",
    "lovely",
    "outstanding",
    "really good",
    "so good",
];
const NEGATIVE_ADJECTIVES: [&str; 10] = [
    "terrible",
    "awful",
    "horrible",
    "useless",
    "pathetic",
    "disappointing",
    "a disaster",
    "the worst",
    "broken",
    "embarrassing",
];
const PAST_TIMES: [&str; 7] = [
    "today",
    "this morning",
    "last night",
    "yesterday",
    "after the update",
    "on Monday",
    "over the weekend",
];
const SINCE_TIMES: [&str; 5] = [
    "yesterday",
    "Monday",
    "the last update",
    "last week",
    "the weekend",
];
const FUTURE_TIMES: [&str; 7] = [
    "next week",
    "this Friday",
    "tomorrow",
    "next month",
    "next Tuesday",
    "this weekend",
    "later this month",
];
const HOURS: [&str; 4] = ["8am-8pm", "9am-6pm", "7am-10pm", "10am-4pm on weekends"];
const PROGRESS: [&str; 5] = [
    "halfway through",
    "almost done",
    "took {n} minutes so far",
    "step {n} of 14",
    "starting now",
];
const SERVICE_DESKS: [&str; 5] = [
    "customer service",
    "the call center",
    "the service team",
    "the Pulse reps",
    "the store staff",
];
const INSULTS: [&str; 6] = ["clowns", "idiots", "morons", "jokers", "amateurs", "fools"];
const CURSES: [&str; 4] = ["damn", "freaking", "bloody", "crappy"];
const PRICES: [&str; 6] = ["$99", "$199", "$349", "$499", "$899", "$1,199"];
const VERSIONS: [&str; 6] = ["2.1", "3.0.4", "4.2", "1.9.7", "5.0", "3.3.1"];

/// Sentence openers per tone, and whether the sentence after them continues in lower case.
/// Only positive texts get the openers a lexicon reads as positive ("honestly", "lol").
const POSITIVE_OPENERS: [(&str, bool); 6] = [
    ("Honestly, ", true),
    ("Ngl ", true),
    ("Okay so ", true),
    ("lol ", true),
    ("Update: ", false),
    ("Real talk: ", false),
];
const NEGATIVE_OPENERS: [(&str, bool); 6] = [
    ("Ugh, ", true),
    ("Ngl ", true),
    ("Welp. ", false),
    ("Update: ", false),
    ("PSA: ", false),
    ("Real talk: ", false),
];
const NEUTRAL_OPENERS: [(&str, bool); 5] = [
    ("Update: ", false),
    ("PSA: ", false),
    ("So... ", false),
    ("Quick one: ", false),
    ("Ngl ", true),
];
const POSITIVE_CLOSERS: [&str; 6] = [
    " Highly recommend!",
    " 10/10.",
    " Best purchase this year.",
    " Love it!",
    " So good.",
    " Happy customer here.",
];
const NEGATIVE_CLOSERS: [&str; 6] = [
    " Never again.",
    " So disappointed.",
    " Fix it!",
    " Terrible.",
    " Awful.",
    " Ugh.",
];
const NEUTRAL_CLOSERS: [&str; 5] = [
    " Thoughts?",
    " Pics later.",
    " More soon.",
    " Details below.",
    " Specs below.",
];
const POSITIVE_EMOJI: [&str; 8] = ["😍", "💯", "🙌", "❤️", "😊", "🎉", "👍", "✨"];
const NEGATIVE_EMOJI: [&str; 8] = ["😡", "🤬", "😤", "😞", "😢", "💔", "👎", "🙄"];
const NEUTRAL_EMOJI: [&str; 5] = ["🤔", "📦", "👀", "📱", "📰"];
const POSITIVE_TAGS: [&str; 6] = [
    "#love", "#happy", "#tech", "#gadgets", "#review", "#winning",
];
const NEGATIVE_TAGS: [&str; 6] = [
    "#fail",
    "#customerservice",
    "#fixit",
    "#disappointed",
    "#brokenpromises",
    "#tech",
];
const CHURN_TAGS: [&str; 3] = ["#cancelled", "#switching", "#refund"];
const NEUTRAL_TAGS: [&str; 6] = [
    "#tech",
    "#news",
    "#unboxing",
    "#gadgets",
    "#launch",
    "#specs",
];
const SPONSORED_TAGS: [&str; 2] = ["#ad", "#sponsored"];
const BRAND_MENTIONS: [&str; 3] = ["@Pulse", "@PulseSupport", "@PulseTech"];

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

/// Short texts in other languages, per (language, mood).
const LOCAL_TEXTS: [(&str, &[&str], Mood); 28] = [
    (
        "es",
        &[
            "Me encanta mi {product}, es increíble",
            "Muy feliz con el {product}, funciona genial",
            "El {product} es lo mejor que he comprado este año",
        ],
        Mood::Positive,
    ),
    (
        "es",
        &[
            "Mi {product} no funciona desde ayer. Qué desastre",
            "Odio el nuevo {product}, muy decepcionado",
            "El {product} se rompió otra vez. Qué mal servicio",
        ],
        Mood::Negative,
    ),
    (
        "es",
        &[
            "Voy a cancelar mi suscripción, el {product} es un desastre",
            "Quiero un reembolso, el {product} es horrible",
            "Me cambio a {competitor}, harto del {product}",
        ],
        Mood::Churn,
    ),
    (
        "es",
        &[
            "¿Alguien sabe cuándo llega el {product} a {city}?",
            "Comparando el {product} con el {competitor}",
            "Configurando mi {product} nuevo, paso {n} de 14",
        ],
        Mood::Neutral,
    ),
    (
        "fr",
        &[
            "J'adore mon {product}, il est génial",
            "Très content du {product}, super qualité",
            "Le {product} est vraiment excellent, bravo Pulse",
        ],
        Mood::Positive,
    ),
    (
        "fr",
        &[
            "Mon {product} ne marche plus, c'est nul",
            "Le {product} plante sans arrêt, c'est insupportable",
            "Service client horrible, mon {product} est en panne depuis {n} jours",
        ],
        Mood::Negative,
    ),
    (
        "fr",
        &[
            "Je résilie mon abonnement, le {product} est une catastrophe",
            "Je veux être remboursé, mon {product} est en panne depuis {n} jours",
            "Je passe chez {competitor}, marre du {product}",
        ],
        Mood::Churn,
    ),
    (
        "fr",
        &[
            "Quelqu'un a testé le {product} ?",
            "Le {product} arrive à {city} la semaine prochaine",
            "Je compare le {product} et le {competitor} ce week-end",
        ],
        Mood::Neutral,
    ),
    (
        "de",
        &[
            "Ich liebe mein {product}, einfach super",
            "Das {product} ist wirklich toll",
            "Bin total begeistert vom {product}, danke Pulse",
        ],
        Mood::Positive,
    ),
    (
        "de",
        &[
            "Mein {product} ist schon wieder kaputt. Schrecklich",
            "Das {product} stürzt ständig ab. Sehr enttäuschend",
            "Seit {n} Tagen geht mein {product} nicht. Furchtbar",
        ],
        Mood::Negative,
    ),
    (
        "de",
        &[
            "Ich kündige mein Abo, das {product} ist eine Katastrophe",
            "Ich will mein Geld zurück, das {product} ist Schrott",
            "Ich wechsle zu {competitor}, vom {product} habe ich genug",
        ],
        Mood::Churn,
    ),
    (
        "de",
        &[
            "Weiß jemand, wann das {product} in {city} erscheint?",
            "Erste Eindrücke vom {product} folgen morgen",
            "Vergleiche gerade das {product} mit dem {competitor}",
        ],
        Mood::Neutral,
    ),
    (
        "pt",
        &[
            "Adorei o meu {product}, muito bom",
            "O {product} é incrível, recomendo",
            "Muito feliz com o {product}, valeu Pulse",
        ],
        Mood::Positive,
    ),
    (
        "pt",
        &[
            "Meu {product} parou de funcionar, que raiva",
            "O {product} travou de novo. Que decepção",
            "Há {n} dias sem conseguir usar o {product}. Péssimo",
        ],
        Mood::Negative,
    ),
    (
        "pt",
        &[
            "Quero meu dinheiro de volta, o {product} é horrível",
            "Vou cancelar minha assinatura, o {product} é péssimo",
            "Vou trocar para o {competitor}, cansei do {product}",
        ],
        Mood::Churn,
    ),
    (
        "pt",
        &[
            "Alguém sabe o preço do {product} no Brasil?",
            "Chegou meu {product}, configurando agora",
            "Comparando o {product} com o {competitor} hoje",
        ],
        Mood::Neutral,
    ),
    (
        "it",
        &[
            "Adoro il mio {product}, funziona benissimo",
            "Il {product} è fantastico, lo consiglio a tutti",
            "Davvero contento del {product}, grazie Pulse",
        ],
        Mood::Positive,
    ),
    (
        "it",
        &[
            "Il mio {product} non funziona più da {n} giorni. Che schifo",
            "Il {product} si blocca di continuo. Che delusione",
            "Assistenza inesistente, il {product} è peggiorato",
        ],
        Mood::Negative,
    ),
    (
        "it",
        &[
            "Disdico l'abbonamento, il {product} è una delusione totale",
            "Assistenza pessima, rivoglio i miei soldi per il {product}",
            "Chiudo il mio account e passo a {competitor}, basta con il {product}",
        ],
        Mood::Churn,
    ),
    (
        "it",
        &[
            "Qualcuno sa quando arriva il {product} a {city}?",
            "Sto confrontando il {product} con il {competitor}",
            "Ho appena ordinato il {product}, vediamo come va",
        ],
        Mood::Neutral,
    ),
    (
        "nl",
        &[
            "Ik ben echt blij met mijn {product}, werkt perfect",
            "De {product} is geweldig, aanrader",
            "Wat een fijne {product}, dank je Pulse",
        ],
        Mood::Positive,
    ),
    (
        "nl",
        &[
            "Mijn {product} doet het al {n} dagen niet meer. Belachelijk",
            "De {product} crasht steeds. Wat een teleurstelling",
            "De klantenservice reageert niet, de {product} is kapot",
        ],
        Mood::Negative,
    ),
    (
        "nl",
        &[
            "Ik zeg mijn abonnement op, de {product} is waardeloos",
            "Slechte klantenservice, ik wil mijn geld terug voor de {product}",
            "Ik stap over naar {competitor}, klaar met de {product}",
        ],
        Mood::Churn,
    ),
    (
        "nl",
        &[
            "Weet iemand wanneer de {product} in {city} uitkomt?",
            "Ik vergelijk de {product} met de {competitor}",
            "Net mijn {product} binnen, eerst even instellen",
        ],
        Mood::Neutral,
    ),
    (
        "ja",
        &[
            "{product}最高！すごく使いやすい",
            "新しい{product}、本当に気に入っています",
            "{product}を買って大満足です",
        ],
        Mood::Positive,
    ),
    (
        "ja",
        &[
            "{product}が{n}日も動かない。最悪です",
            "{product}がまた固まった。本当に残念です",
            "{product}のサポートに何度連絡しても返事がない",
        ],
        Mood::Negative,
    ),
    (
        "ja",
        &[
            "{product}の解約を考えています。がっかりしました",
            "{product}のサポートがひどい。返金してほしい",
            "{competitor}に乗り換えます。{product}には失望しました",
        ],
        Mood::Churn,
    ),
    (
        "ja",
        &[
            "{product}は{city}でいつ発売されますか？",
            "{product}と{competitor}を比較しています",
            "{product}が届いたので設定中です",
        ],
        Mood::Neutral,
    ),
];

/// Languages a post without a place may be written in, weighted like the places that speak
/// them.
const UNPLACED_LANGUAGES: [(&str, u32); 7] = [
    ("es", 9),
    ("fr", 7),
    ("de", 7),
    ("pt", 4),
    ("ja", 4),
    ("it", 3),
    ("nl", 3),
];

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
        let openers = openers_for(tone);
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
        out.push_str(pick(rng, closers_for(tone)));
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
            _ => tags_for(tone),
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
        out.push_str(pick(rng, emoji_for(tone)));
        if rng.random_bool(DOUBLE_EMOJI_PROB) {
            out.push_str(pick(rng, emoji_for(tone)));
        }
    }
}

fn openers_for(tone: Tone) -> &'static [(&'static str, bool)] {
    match tone {
        Tone::Positive => &POSITIVE_OPENERS,
        Tone::Negative => &NEGATIVE_OPENERS,
        Tone::Neutral => &NEUTRAL_OPENERS,
    }
}

fn closers_for(tone: Tone) -> &'static [&'static str] {
    match tone {
        Tone::Positive => &POSITIVE_CLOSERS,
        Tone::Negative => &NEGATIVE_CLOSERS,
        Tone::Neutral => &NEUTRAL_CLOSERS,
    }
}

fn emoji_for(tone: Tone) -> &'static [&'static str] {
    match tone {
        Tone::Positive => &POSITIVE_EMOJI,
        Tone::Negative => &NEGATIVE_EMOJI,
        Tone::Neutral => &NEUTRAL_EMOJI,
    }
}

fn tags_for(tone: Tone) -> &'static [&'static str] {
    match tone {
        Tone::Positive => &POSITIVE_TAGS,
        Tone::Negative => &NEGATIVE_TAGS,
        Tone::Neutral => &NEUTRAL_TAGS,
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
        let mut s = "Ngl The thing".to_string();
        lowercase_first_word(&mut s, 4);
        assert_eq!(s, "Ngl the thing");
        let mut s = "Ngl I'm done".to_string();
        lowercase_first_word(&mut s, 4);
        assert_eq!(s, "Ngl I'm done");
        let mut s = "Ngl Pulse devs".to_string();
        lowercase_first_word(&mut s, 4);
        assert_eq!(s, "Ngl Pulse devs");
    }
}
