use super::*;
use crate::models::Emotion;

fn analyze(text: &str) -> Analysis {
    LexiconAnalyzer::new().analyze(text)
}

fn churn_of(text: &str) -> f32 {
    analyze(text).churn_risk.get()
}

fn cues_of(text: &str) -> Cues {
    LexiconAnalyzer::new().cues(text)
}

fn words(text: &str) -> Vec<String> {
    let mut scratch = Scratch::default();
    scratch.tokenize(text);
    (0..scratch.tokens.len())
        .map(|i| scratch.word(i).to_string())
        .collect()
}

fn assert_in_range(text: &str, result: &Analysis) {
    let score = result.sentiment_score.get();
    assert!((-1.0..=1.0).contains(&score), "{text:?}: sentiment {score}");
    let e = result.emotions;
    for p in [
        e.anger,
        e.joy,
        e.optimism,
        e.sadness,
        result.toxicity,
        result.churn_risk,
    ] {
        assert!((0.0..=1.0).contains(&p.get()), "{text:?}: {result:?}");
    }
    let sum = e.anger.get() + e.joy.get() + e.optimism.get() + e.sadness.get();
    assert!(
        sum == 0.0 || (sum - 1.0).abs() < 1e-4,
        "{text:?}: emotions sum to {sum}"
    );
}

#[test]
fn clear_texts_get_the_right_label() {
    let cases = [
        (
            "I absolutely love this phone, best purchase ever!",
            SentimentLabel::Positive,
        ),
        (
            "What a wonderful, happy day with great friends :)",
            SentimentLabel::Positive,
        ),
        (
            "This is terrible. I hate it and the service was awful.",
            SentimentLabel::Negative,
        ),
        (
            "Worst update ever, the app keeps crashing and I'm furious",
            SentimentLabel::Negative,
        ),
        ("The store opens at 9am on Monday.", SentimentLabel::Neutral),
        ("Train 14 departs from platform 2.", SentimentLabel::Neutral),
    ];
    for (text, label) in cases {
        assert_eq!(analyze(text).sentiment_label, label, "{text}");
    }
}

#[test]
fn label_thresholds_split_the_compound_range() {
    assert_eq!(sentiment_label(-1.0), SentimentLabel::Negative);
    assert_eq!(
        sentiment_label(NEGATIVE_MAX_COMPOUND),
        SentimentLabel::Negative
    );
    assert_eq!(sentiment_label(0.0), SentimentLabel::Neutral);
    assert_eq!(
        sentiment_label(POSITIVE_MIN_COMPOUND),
        SentimentLabel::Positive
    );
    assert_eq!(sentiment_label(1.0), SentimentLabel::Positive);
}

#[test]
fn churn_intent_scores_high_and_praise_scores_near_zero() {
    let churn = churn_of("I'm cancelling my subscription and switching to X");
    assert!(churn >= 0.6, "churn {churn}");
    let praise = churn_of("Loving the new update, great job team!");
    assert!(praise < 0.05, "praise churn {praise}");
}

#[test]
fn every_intent_phrase_alone_reaches_the_floor() {
    for text in [
        "cancel my subscription",
        "I am canceling",
        "unsubscribe",
        "switching to another provider",
        "I will switch to them",
        "moving to a different bank",
        "I want a refund",
        "leaving this platform",
        "done with this app",
        "never buying again",
        "please close my account",
        "returning it",
    ] {
        let churn = churn_of(text);
        assert!(churn >= INTENT, "{text}: churn {churn}");
    }
}

#[test]
fn negativity_and_anger_raise_churn_above_intent_alone() {
    let plain = churn_of("switching to another provider");
    let angry = churn_of("This is the worst service, I'm furious, switching to another provider");
    assert!(angry > plain, "angry {angry} <= plain {plain}");
    let complaint = churn_of("This is the worst service, I'm furious");
    assert!(complaint <= NO_INTENT_SCALE, "complaint {complaint}");
}

#[test]
fn negated_or_unrelated_intent_does_not_count() {
    for text in [
        "I'm not cancelling my subscription",
        "I would never switch to them",
        "leaving for work now",
        "I can't wait, leaving for school",
    ] {
        let churn = churn_of(text);
        assert!(churn < INTENT, "{text}: churn {churn}");
    }
    let eager = churn_of("can't wait to switch to the new plan");
    assert!(eager >= INTENT, "eager switch {eager}");
}

#[test]
fn insults_score_higher_than_neutral_and_aimed_insults_higher_still() {
    let neutral = analyze("The meeting moved to Thursday afternoon.")
        .toxicity
        .get();
    let insult = analyze("that guy is an idiot").toxicity.get();
    let aimed = analyze("you are an idiot").toxicity.get();
    assert_eq!(neutral, 0.0);
    assert!(insult > neutral, "insult {insult}");
    assert!(aimed > insult, "aimed {aimed} <= insult {insult}");
    let mild = analyze("damn, missed the bus").toxicity.get();
    assert!(mild > 0.0 && mild < 0.5, "mild swear {mild}");
    let pile = analyze("fuck you, you stupid piece of shit").toxicity.get();
    assert!(pile > aimed, "pile {pile} <= aimed {aimed}");
}

#[test]
fn emotions_follow_their_cues() {
    let cases = [
        ("I am so happy today haha", Emotion::Joy),
        ("feeling sad and lonely tonight 😢", Emotion::Sadness),
        ("I'm furious, this is outrageous 😡", Emotion::Anger),
        (
            "I hope tomorrow will be better, stay strong 🙏",
            Emotion::Optimism,
        ),
        ("soooo happyyyy", Emotion::Joy),
        ("#depressing", Emotion::Sadness),
    ];
    for (text, emotion) in cases {
        assert_eq!(analyze(text).emotions.dominant(), Some(emotion), "{text}");
    }
    assert_eq!(
        analyze("The store opens at 9am.").emotions,
        EmotionScores::default()
    );
    let negated = analyze("I am not happy").emotions;
    assert_eq!(negated.dominant(), Some(Emotion::Sadness));
}

#[test]
fn scores_stay_in_range() {
    let long = "I hate you, you idiot! cancel my subscription 😡 ".repeat(500);
    let texts = [
        "",
        " ",
        "I love it! 😍😍😍 <3 :) :D",
        "FUCK FUCK FUCK you idiot moron loser, refund, unsubscribe, leaving, done with",
        "not not not never no",
        "happy sad angry hopeful furious heartbroken optimistic",
        long.as_str(),
    ];
    let mut analyzer = LexiconAnalyzer::new();
    for text in texts {
        let result = analyzer.analyze(text);
        assert_in_range(text, &result);
    }
}

#[test]
fn odd_input_never_panics() {
    let big = "naïve café 😀 שלום עולם مرحبا ".repeat(800);
    assert!(big.len() > 20_000);
    let texts = [
            "",
            "\0\u{1}\u{7f}",
            "👨‍👩‍👧‍👦🏳️‍🌈👍🏽❤️",
            "שלום, זה נהדר! مرحبا بالعالم \u{202E}reversed\u{202C}",
            "Z\u{0351}\u{036B}A\u{0334}\u{0335}L\u{0360}G\u{0334}O\u{0335} h\u{0336}a\u{0336}t\u{0336}e",
            "\u{0301}\u{0301}\u{0301}",
            "'''***:::((()))<3>:(:'(",
            "İstanbul ǅ ß ﬁ Ⅻ",
            "http://example.com/a:b?c=d#e",
            "*sigh* f*** sh** a** 'quoted' don't",
            big.as_str(),
        ];
    let mut analyzer = LexiconAnalyzer::new();
    let results = analyzer.analyze_batch(&texts);
    assert_eq!(results.len(), texts.len());
    for (text, result) in texts.iter().zip(&results) {
        assert_in_range(text, result);
        assert_eq!(result.model, MODEL_NAME);
    }
}

#[test]
fn batch_keeps_order_and_names_the_model() {
    let mut analyzer = LexiconAnalyzer::default();
    assert_eq!(analyzer.model(), "lexicon-vader@1");
    let texts = ["I love it", "I hate it", "It is Tuesday"];
    let batch = analyzer.analyze_batch(&texts);
    let single: Vec<Analysis> = texts.iter().map(|t| analyze(t)).collect();
    assert_eq!(batch, single);
    assert!(analyzer.analyze_batch(&[]).is_empty());
}

#[test]
fn tokens_are_normalised() {
    assert_eq!(words("Don’t STOP"), ["don't", "stop"]);
    assert_eq!(words("goooood #Sad"), ["good", "sad"]);
    assert_eq!(
        words("great:) bad:'( <3 :Done"),
        ["great", ":)", "bad", ":'(", "<3", "done"]
    );
    assert_eq!(words("*sigh* f*** sh**"), ["sigh", "f***", "sh**"]);
    assert_eq!(words("ok😂👍🏽"), ["ok", "😂", "👍"]);
    assert_eq!(words("h\u{0336}a\u{0336}t\u{0336}e\u{0336}"), ["hate"]);
    assert!(words("").is_empty());
}

#[test]
fn every_cue_is_reachable_and_listed_once() {
    let lists: [&[(&str, f32)]; 7] = [
        ANGER_CUES,
        JOY_CUES,
        OPTIMISM_CUES,
        SADNESS_CUES,
        PROFANITY_CUES,
        INSULT_CUES,
        CHURN_CUES,
    ];
    for list in lists {
        let mut seen = HashSet::new();
        for &(cue, weight) in list {
            assert!(seen.insert(cue), "{cue:?} listed twice");
            assert!(weight > 0.0 && weight <= 1.0, "{cue:?}: weight {weight}");
            let expected: Vec<&str> = cue.split(' ').collect();
            assert_eq!(
                words(cue),
                expected,
                "{cue:?} cannot match a tokenised text"
            );
        }
    }
    for &(cue, weight) in CHURN_CUES.iter().chain(LOCAL_CHURN_CUES) {
        assert!(weight >= INTENT, "{cue:?}: intent {weight}");
    }
    let mut seen = HashSet::new();
    for &(cue, _) in CHURN_CUES.iter().chain(LOCAL_CHURN_CUES) {
        assert!(seen.insert(cue), "{cue:?} listed in two languages");
    }
}

#[test]
fn intent_to_leave_counts_in_other_languages() {
    for text in [
        "Voy a cancelar mi suscripción, el Pulse Phone es un desastre",
        "Quiero un reembolso, el Pulse Watch es horrible",
        "Je résilie mon abonnement, le Pulse Buds est une catastrophe",
        "Je veux être remboursé, mon Pulse Phone est en panne",
        "Ich kündige mein Abo, das Pulse Phone ist eine Katastrophe",
        "Ich will mein Geld zurück, das Pulse TV ist Schrott",
        "Vou cancelar minha assinatura, o Pulse Phone é péssimo",
        "Disdico l'abbonamento, il Pulse Watch è una delusione totale",
        "Ik zeg mijn abonnement op, de Pulse Buds is waardeloos",
        "Aboneliğimi iptal ediyorum, Pulse Phone tam bir hayal kırıklığı",
        "İptal ettim, paramı geri istiyorum",
        "Pulse Phoneの解約を考えています。がっかりしました",
        "サポートがひどい。返金してほしい",
    ] {
        let cues = cues_of(text);
        assert!(cues.intent >= INTENT, "{text}: intent {}", cues.intent);
    }
}

// A post sharing an article whose link's slug says "leaving", or thanking `@refund_bot`, read
// as churn intent (0.6, the default high-churn threshold): the models read neither.
#[test]
fn links_and_handles_give_no_cues() {
    for text in [
        "Good read https://www.example.com/2023/11/17/why-advertisers-are-leaving-x",
        "see www.example.com/switching-to-annual-billing for details",
        "thanks @refund_bot, sorted",
        "HTTPS://example.com/i-hate-this-stupid-idiot-thing",
    ] {
        let cues = cues_of(text);
        assert_eq!(cues.intent, 0.0, "{text}");
        assert_eq!(cues.toxicity, 0.0, "{text}");
    }
    for text in ["I'm leaving acme", "@acme I want a refund, cancelling now"] {
        let cues = cues_of(text);
        assert!(cues.intent >= INTENT, "{text}: intent {}", cues.intent);
    }
}

#[test]
fn negated_intent_does_not_count_in_other_languages() {
    for text in [
        "Je ne vais pas résilier, le support a réglé le problème",
        "Ich werde nicht kündigen, der Support war super",
        "No voy a cancelar mi suscripción, ya funciona",
        "Non disdico, adesso funziona",
        "Aboneliğimi iptal etmeyeceğim, destek sorunu çözdü",
        "解約しないことにしました",
        "Mi Pulse Phone no funciona desde ayer. Qué desastre",
        "Le Pulse Phone plante sans arrêt, c'est insupportable",
    ] {
        let cues = cues_of(text);
        assert!(cues.intent < INTENT, "{text}: intent {}", cues.intent);
    }
}

#[test]
fn truncation_respects_char_boundaries() {
    let text = "é".repeat(MAX_ANALYZED_BYTES);
    let cut = prefix_bytes(&text, MAX_ANALYZED_BYTES + 1);
    assert!(cut.len() <= MAX_ANALYZED_BYTES + 1);
    assert_eq!(cut.len() % 'é'.len_utf8(), 0);
    assert_eq!(prefix_bytes("short", MAX_ANALYZED_BYTES), "short");
}

// The VADER crate took the emphasis of `!!` or `??` on a text of no sentiment word as
// negative: questions and announcements read as complaints.
#[test]
fn emphasis_alone_carries_no_sentiment() {
    for text in [
        "Who is watching the game tonight??",
        "Launch day tomorrow!!!",
        "Really?!",
    ] {
        let a = LexiconAnalyzer::new().analyze(text);
        assert_eq!(a.sentiment_score.get(), 0.0, "{text}");
        assert_eq!(a.sentiment_label, SentimentLabel::Neutral, "{text}");
    }
    let plain = LexiconAnalyzer::new()
        .analyze("I love it")
        .sentiment_score
        .get();
    let loud = LexiconAnalyzer::new()
        .analyze("I love it!!!")
        .sentiment_score
        .get();
    assert!(loud > plain, "{loud} <= {plain}");
    let angry = LexiconAnalyzer::new()
        .analyze("I hate it!!!")
        .sentiment_score
        .get();
    assert!(
        angry
            < LexiconAnalyzer::new()
                .analyze("I hate it")
                .sentiment_score
                .get()
    );
}
