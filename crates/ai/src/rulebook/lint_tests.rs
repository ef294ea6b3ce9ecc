//! Each check against a small rule-book that has no findings at all, changed in one place.

use super::*;

const BASE: &str = r#"
name = "Acme Bikes"
greeting = "Hello, Acme Bikes. How can I help?"
fallback = ["Sorry, I can tell you our hours or book a repair."]

[escalate]
kind = "transfer"
to = "+15550100200"

[dtmf]
"0" = "human"

[[intent]]
name = "hours"
examples = ["when are you open", "what are your opening hours"]
keywords = ["hours"]
reply = "We're open nine to five, Monday to Saturday."

[[intent]]
name = "repair"
examples = ["I need my bike repaired", "book a repair"]
keywords = ["repair", "fix"]
confirm = "A repair for {name} on {date}. Shall I book it?"
reply = "Booked, {name}. See you on {date}."

[[intent.slot]]
name = "name"
kind = "name"
prompt = "What's your name?"

[[intent.slot]]
name = "date"
kind = "date"
prompt = "Which day?"

[intent.action]
kind = "http"
url = "https://bookings.example.com/repairs"
body = { name = "{name}", date = "{date}" }

[[intent]]
name = "human"
examples = ["let me talk to a person"]
reply = "Putting you through."

[intent.action]
kind = "transfer"
to = "+15550100200"
"#;

fn lints_with(text: &str, opts: &LintOptions) -> Vec<Lint> {
    lint_text(text, BookFormat::Toml, opts).1
}

fn lints(text: &str) -> Vec<Lint> {
    lints_with(text, &LintOptions::default())
}

/// The single finding of `text`, as (severity, at, message).
fn only(text: &str) -> (Severity, String, String) {
    let l = lints(text);
    assert_eq!(l.len(), 1, "{l:#?}");
    (l[0].severity, l[0].at.clone(), l[0].message.clone())
}

fn edit(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from}");
    BASE.replacen(from, to, 1)
}

/// `BASE` with the last `from` (the `human` intent's transfer) replaced.
fn edit_last(from: &str, to: &str) -> String {
    let k = BASE.rfind(from).unwrap();
    format!("{}{to}{}", &BASE[..k], &BASE[k + from.len()..])
}

const HUMAN_ACTION: &str = "kind = \"transfer\"\nto = \"+15550100200\"";

const INTENT_LATE: &str = "\n[[intent]]\nname = \"late\"\nexamples = [\"when are you open late\"]\nreply = \"Until eight on Thursdays.\"\n";

#[test]
fn the_base_book_and_the_clinic_agent_are_clean() {
    assert_eq!(lints(BASE), []);
    let clinic = lints(include_str!("../../../../agents/clinic.toml"));
    assert_eq!(clinic, [], "agents/clinic.toml");
}

#[test]
fn load_errors_come_with_line_and_column() {
    let (s, at, m) = only(&edit("greeting = \"Hello", "greeting = Hello"));
    assert_eq!((s, at.as_str()), (Severity::Error, "line 3, column 17"), "{m}");
    let (_, at, m) = only(&edit("kind = \"name\"", "kind = \"nickname\""));
    assert_eq!(at, "line 28, column 8", "{m}");
    assert!(m.contains("unknown variant `nickname`"), "{m}");
    let (_, at, m) = lint_text("name: x\ngreeting: [\n", BookFormat::Yaml, &LintOptions::default()).1.remove(0).into_parts();
    assert!(at.starts_with("line "), "{at}: {m}");
}

impl Lint {
    fn into_parts(self) -> (Severity, String, String) {
        (self.severity, self.at, self.message)
    }
}

#[test]
fn what_loading_rejects_is_an_error_not_a_panic() {
    let (s, at, m) = only(&edit("See you on {date}.", "See you on {day}."));
    assert_eq!((s, at.as_str()), (Severity::Error, "intent.repair.reply"));
    assert!(m.contains("unknown slot `{day}`"), "{m}");
    let mut book = RuleBook::parse(BASE, BookFormat::Toml).unwrap();
    book.intents.clear();
    book.fallback.clear();
    let l = lint(&book, &LintOptions::default());
    assert!(l.iter().any(|x| x.at == "intent") && l.iter().any(|x| x.at == "fallback") && l.iter().any(|x| x.at == "dtmf.0"), "{l:#?}");
}

#[test]
fn an_intent_that_an_earlier_one_always_wins_is_unreachable() {
    let l = lints(&format!("{BASE}{INTENT_LATE}"));
    assert_eq!(l.len(), 1, "{l:#?}");
    assert_eq!((l[0].severity, l[0].at.as_str()), (Severity::Error, "intent.late.examples"));
    assert!(l[0].message.contains("unreachable") && l[0].message.contains("picks `hours`"), "{}", l[0].message);
    // a keypad entry reaches it (its example still leads elsewhere)
    let l = lints(&format!("{}{INTENT_LATE}", BASE.replace("\"0\" = \"human\"", "\"0\" = \"human\"\n\"9\" = \"late\"")));
    assert_eq!(l.iter().map(|x| (x.severity, x.at.as_str())).collect::<Vec<_>>(), [(Severity::Warning, "intent.late.examples")], "{l:#?}");
}

#[test]
fn examples_without_words_of_their_own_need_an_embedding_model() {
    let (s, at, m) = only(&format!("{BASE}\n[[intent]]\nname = \"greet\"\nexamples = [\"hi\", \"hello\"]\nreply = \"Hello again.\"\n"));
    assert_eq!((s, at.as_str()), (Severity::Warning, "intent.greet.examples"));
    assert!(m.contains("only with an embedding model"), "{m}");
}

#[test]
fn an_example_that_leads_to_another_intent_is_named() {
    let (s, at, m) = only(&edit("\"book a repair\"", "\"book a repair\", \"when are you open for repairs\""));
    assert_eq!((s, at.as_str()), (Severity::Warning, "intent.repair.examples"));
    assert!(m.contains("\"when are you open for repairs\" picks `hours`"), "{m}");
}

#[test]
fn placeholders_nothing_fills() {
    let cases = [
        (edit("/repairs\"", "/repairs/{phone}\""), "intent.repair.action.url", "`{phone}` is never filled"),
        (edit("date = \"{date}\" }", "date = \"{date}\", phone = \"{phone}\" }"), "intent.repair.action.body", "`{phone}` is never filled"),
        (edit("reply = \"Putting you through.\"", "reply = \"Putting you through, ticket {http.ticket}.\""), "intent.human.reply", "only by an http action"),
        (edit("Shall I book it?", "Shall I book it as {http.ref}?"), "intent.repair.confirm", "not known yet"),
        (edit("How can I help?", "How can I help, {name}?"), "greeting", "never filled in the greeting"),
        (edit("prompt = \"Which day?\"", "prompt = \"Which day, {name}?\""), "intent.repair.slot.date.prompt", "spoken as written"),
        (edit("book a repair.\"]", "book a repair, {caller}.\"]"), "fallback.0", "spoken as written"),
    ];
    for (text, at, msg) in cases {
        let (s, got, m) = only(&text);
        assert_eq!((s, got.as_str()), (Severity::Error, at), "{m}");
        assert!(m.contains(msg), "{at}: {m}");
    }
}

#[test]
fn slots_declared_twice_or_never_used() {
    let unused = edit("prompt = \"Which day?\"", "prompt = \"Which day?\"\n\n[[intent.slot]]\nname = \"bike\"\nkind = \"text\"\nprompt = \"What bike is it?\"");
    assert_eq!(only(&unused).0, Severity::Warning);
    assert_eq!(only(&unused).1, "intent.repair.slot.bike");
    let twice = edit("prompt = \"Which day?\"", "prompt = \"Which day?\"\n\n[[intent.slot]]\nname = \"date\"\nkind = \"date\"\nprompt = \"Which day again?\"");
    let (s, at, m) = only(&twice);
    assert_eq!((s, at.as_str()), (Severity::Error, "intent.repair.slot.date"));
    assert!(m.contains("declared twice"), "{m}");
}

#[test]
fn unset_environment_variables_with_check_env() {
    let text = edit("https://bookings.example.com/repairs", "{env.CF_LINT_TEST_SURELY_UNSET}");
    assert_eq!(lints(&text), []);
    let l = lints_with(&text, &LintOptions { check_env: true, ..Default::default() });
    assert_eq!(l.len(), 1, "{l:#?}");
    assert_eq!((l[0].severity, l[0].at.as_str()), (Severity::Error, "intent.repair.action.url"));
    assert!(l[0].message.contains("CALLFUNNEL_CF_LINT_TEST_SURELY_UNSET"), "{}", l[0].message);
}

#[test]
fn actions_missing_what_they_need() {
    let cases = [
        (edit("url = \"https://bookings.example.com/repairs\"", "url = \"\""), "intent.repair.action.url", "has no url"),
        (edit("https://bookings.example.com/repairs", "https://"), "intent.repair.action.url", "not a valid URL"),
        (edit("url = \"https://bookings.example.com/repairs\"", "url = \"https://bookings.example.com/repairs\"\ntimeout_ms = 0"), "intent.repair.action.timeout_ms", "always time out"),
        (edit("kind = \"transfer\"\nto = \"+15550100200\"\n", "kind = \"transfer\"\nto = \"\"\n"), "escalate.to", "no transfer target"),
        (edit_last(HUMAN_ACTION, "kind = \"transfer\"\nto = \"reception\""), "intent.human.action.to", "neither an E.164"),
        (edit_last(HUMAN_ACTION, "kind = \"send_dtmf\"\ndigits = \"12x\""), "intent.human.action.digits", "cannot be played"),
        (edit_last(HUMAN_ACTION, "kind = \"knowledge\"\nmin_score = 1.5"), "intent.human.action.min_score", "not in 0..1"),
        (edit("kind = \"transfer\"\nto = \"+15550100200\"\n\n[dtmf]", "kind = \"http\"\nurl = \"https://x.example.com\"\n\n[dtmf]"), "escalate.kind", "use transfer or end_call"),
        (edit("\"0\" = \"human\"", "\"0#\" = \"human\""), "dtmf.0#", "can never be entered"),
    ];
    for (text, at, msg) in cases {
        let (s, got, m) = only(&text);
        assert_eq!((s, got.as_str()), (Severity::Error, at), "{m}");
        assert!(m.contains(msg), "{at}: {m}");
    }
    let (s, at, m) = only(&edit("https://bookings", "http://bookings"));
    assert_eq!((s, at.as_str()), (Severity::Warning, "intent.repair.action.url"), "{m}");
}

#[test]
fn long_turns_and_markup_are_flagged() {
    let long = "We're open nine to five on weekdays and ten to four on Saturdays, closed on Sundays and public holidays, and during the summer months we close an hour earlier on Fridays so that the whole team can go out for a ride together.";
    let (s, at, m) = only(&edit("We're open nine to five, Monday to Saturday.", long));
    assert_eq!((s, at.as_str()), (Severity::Warning, "intent.hours.reply"));
    assert!(m.contains("too long"), "{m}");
    let l = lints_with(BASE, &LintOptions { max_words: 5, ..Default::default() });
    assert!(l.iter().any(|x| x.at == "intent.hours.reply") && l.iter().all(|x| x.severity == Severity::Warning), "{l:#?}");
    let (s, at, _) = only(&edit("Monday to Saturday.", "**Monday** to Saturday."));
    assert_eq!((s, at.as_str()), (Severity::Warning, "intent.hours.reply"));
    let (s, at, _) = only(&edit("reply = \"Putting you through.\"", "reply = \"\""));
    assert_eq!((s, at.as_str()), (Severity::Error, "intent.human.reply"));
}

#[test]
fn example_phrases_two_intents_share() {
    let l = lints(&edit("\"book a repair\"", "\"book a repair\", \"When are you open?\""));
    let dup: Vec<_> = l.iter().filter(|x| x.severity == Severity::Error).collect();
    assert_eq!(dup.len(), 1, "{l:#?}");
    assert_eq!(dup[0].at, "intent.repair.examples");
    assert!(dup[0].message.contains("same to the matcher as \"when are you open\" of intent `hours`"), "{}", dup[0].message);
    let (s, at, m) = only(&edit("keywords = [\"repair\", \"fix\"]", "keywords = [\"repair\", \"fix\", \"hours\"]"));
    assert_eq!((s, at.as_str()), (Severity::Warning, "intent.repair.keywords"));
    assert!(m.contains("`hour`"), "{m}");
}

#[test]
fn agent_sections_are_not_rule_book_fields() {
    let agent = format!("{BASE}\n[analysis]\nsummary = true\n").replacen("[escalate]", "[profile]\nvoice = \"joe\"\n\n[profile.providers]\nstt = [\"local\"]\n\n[escalate]", 1);
    assert_eq!(lints(&agent), []);
    // positions stay those of the file
    let (_, at, _) = only(&agent.replacen("\"+15550100200\"", "+15550100200", 2));
    assert_eq!(at, "line 12, column 1"); // the `[escalate]` table: a tagged action reports its table
    let yaml = "profile:\n  voice: joe\nname: x\ngreeting: Hello there.\nfallback: [Sorry?]\nintent:\n- name: hours\n  examples: [when are you open]\n  reply: Nine to five.\n";
    assert_eq!(lint_text(yaml, BookFormat::Yaml, &LintOptions::default()).1, []);
}

#[test]
fn smaller_settings_that_would_misbehave() {
    let cases = [
        (edit("fallback = [", "max_fallbacks = 0\nfallback = ["), Severity::Warning, "max_fallbacks", "first miss escalates"),
        (edit("fallback = [", "knowledge_fallback = 1.5\nfallback = ["), Severity::Error, "knowledge_fallback", "not in 0..1"),
        (edit("url = \"https://bookings.example.com/repairs\"", "url = \"https://bookings.example.com/repairs\"\ntimeout_ms = 20000"), Severity::Warning, "intent.repair.action.timeout_ms", "too long for a caller"),
        (edit("\"book a repair\"", "\"book a repair\", \" \""), Severity::Error, "intent.repair.examples", "is empty"),
        (edit("\"book a repair\"", "\"book a repair\", \"Book a repair!\""), Severity::Warning, "intent.repair.examples", "repeats another example"),
    ];
    for (text, severity, at, msg) in cases {
        let (s, got, m) = only(&text);
        assert_eq!((s, got.as_str()), (severity, at), "{m}");
        assert!(m.contains(msg), "{at}: {m}");
    }
}
