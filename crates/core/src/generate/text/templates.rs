//! The generator's words: the core templates of each flavor, the words that fill their
//! slots, the openers, closers, emoji and hashtags around them, and short texts in other
//! languages: data only, apart from the logic in [`super`] that reads it.

use super::Mood;

pub(super) const JOY: &[&str] = &[
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

pub(super) const OPTIMISM: &[&str] = &[
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

pub(super) const ANGER: &[&str] = &[
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

pub(super) const SADNESS: &[&str] = &[
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

pub(super) const CHURN: &[&str] = &[
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

pub(super) const TOXIC: &[&str] = &[
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

pub(super) const NEUTRAL: &[&str] = &[
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

pub(super) const NEWS: &[&str] = &[
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

pub(super) const COMPETITORS: [&str; 6] =
    ["Orbit", "Nimbus", "Vertex", "Zephyr", "Halo", "Kestrel"];
pub(super) const POSITIVE_ADJECTIVES: [&str; 12] = [
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
pub(super) const NEGATIVE_ADJECTIVES: [&str; 10] = [
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
pub(super) const PAST_TIMES: [&str; 7] = [
    "today",
    "this morning",
    "last night",
    "yesterday",
    "after the update",
    "on Monday",
    "over the weekend",
];
pub(super) const SINCE_TIMES: [&str; 5] = [
    "yesterday",
    "Monday",
    "the last update",
    "last week",
    "the weekend",
];
pub(super) const FUTURE_TIMES: [&str; 7] = [
    "next week",
    "this Friday",
    "tomorrow",
    "next month",
    "next Tuesday",
    "this weekend",
    "later this month",
];
pub(super) const HOURS: [&str; 4] = ["8am-8pm", "9am-6pm", "7am-10pm", "10am-4pm on weekends"];
pub(super) const PROGRESS: [&str; 5] = [
    "halfway through",
    "almost done",
    "took {n} minutes so far",
    "step {n} of 14",
    "starting now",
];
pub(super) const SERVICE_DESKS: [&str; 5] = [
    "customer service",
    "the call center",
    "the service team",
    "the Pulse reps",
    "the store staff",
];
pub(super) const INSULTS: [&str; 6] = ["clowns", "idiots", "morons", "jokers", "amateurs", "fools"];
pub(super) const CURSES: [&str; 4] = ["damn", "freaking", "bloody", "crappy"];
pub(super) const PRICES: [&str; 6] = ["$99", "$199", "$349", "$499", "$899", "$1,199"];
pub(super) const VERSIONS: [&str; 6] = ["2.1", "3.0.4", "4.2", "1.9.7", "5.0", "3.3.1"];

/// What a text of one tone may open and close with, and its emoji and hashtags.
pub(super) struct ToneWords {
    /// Sentence openers, and whether the sentence after them continues in lower case.
    pub openers: &'static [(&'static str, bool)],
    pub closers: &'static [&'static str],
    pub emoji: &'static [&'static str],
    pub tags: &'static [&'static str],
}

/// Only positive texts get the openers a lexicon reads as positive ("honestly", "lol").
pub(super) const POSITIVE_WORDS: ToneWords = ToneWords {
    openers: &[
        ("Honestly, ", true),
        ("Ngl ", true),
        ("Okay so ", true),
        ("lol ", true),
        ("Update: ", false),
        ("Real talk: ", false),
    ],
    closers: &[
        " Highly recommend!",
        " 10/10.",
        " Best purchase this year.",
        " Love it!",
        " So good.",
        " Happy customer here.",
    ],
    emoji: &["😍", "💯", "🙌", "❤️", "😊", "🎉", "👍", "✨"],
    tags: &[
        "#love", "#happy", "#tech", "#gadgets", "#review", "#winning",
    ],
};
pub(super) const NEGATIVE_WORDS: ToneWords = ToneWords {
    openers: &[
        ("Ugh, ", true),
        ("Ngl ", true),
        ("Welp. ", false),
        ("Update: ", false),
        ("PSA: ", false),
        ("Real talk: ", false),
    ],
    closers: &[
        " Never again.",
        " So disappointed.",
        " Fix it!",
        " Terrible.",
        " Awful.",
        " Ugh.",
    ],
    emoji: &["😡", "🤬", "😤", "😞", "😢", "💔", "👎", "🙄"],
    tags: &[
        "#fail",
        "#customerservice",
        "#fixit",
        "#disappointed",
        "#brokenpromises",
        "#tech",
    ],
};
pub(super) const NEUTRAL_WORDS: ToneWords = ToneWords {
    openers: &[
        ("Update: ", false),
        ("PSA: ", false),
        ("So... ", false),
        ("Quick one: ", false),
        ("Ngl ", true),
    ],
    closers: &[
        " Thoughts?",
        " Pics later.",
        " More soon.",
        " Details below.",
        " Specs below.",
    ],
    emoji: &["🤔", "📦", "👀", "📱", "📰"],
    tags: &[
        "#tech",
        "#news",
        "#unboxing",
        "#gadgets",
        "#launch",
        "#specs",
    ],
};
pub(super) const CHURN_TAGS: [&str; 3] = ["#cancelled", "#switching", "#refund"];
pub(super) const SPONSORED_TAGS: [&str; 2] = ["#ad", "#sponsored"];
pub(super) const BRAND_MENTIONS: [&str; 3] = ["@Pulse", "@PulseSupport", "@PulseTech"];

/// Short texts in other languages, per (language, mood).
pub(super) const LOCAL_TEXTS: [(&str, &[&str], Mood); 28] = [
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
pub(super) const UNPLACED_LANGUAGES: [(&str, u32); 7] = [
    ("es", 9),
    ("fr", 7),
    ("de", 7),
    ("pt", 4),
    ("ja", 4),
    ("it", 3),
    ("nl", 3),
];
