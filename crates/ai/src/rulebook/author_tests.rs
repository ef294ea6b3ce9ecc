//! What happens to a model's reply before it becomes a rule-book (the requests themselves are
//! tested against the Anthropic simulator in the CLI's integration tests).

use super::*;

const SMALL: &str = "name = \"Acme\"\ngreeting = \"Hello, Acme.\"\nfallback = [\"Sorry, I can tell you our hours.\"]\n\n[[intent]]\nname = \"hours\"\nexamples = [\"when are you open\"]\nreply = \"Nine to five.\"\n";

fn opts(format: BookFormat) -> AuthorOptions {
    AuthorOptions { format, ..Default::default() }
}

#[test]
fn the_block_is_found_among_prose() {
    let reply = format!("Here is the rule-book for Acme:\n\n```toml\n{SMALL}```\n\nLet me know if you want changes.");
    assert_eq!(fenced_block(&reply), (SMALL.to_string(), Some(BookFormat::Toml)));
    let yaml = "name: Acme\ngreeting: Hello.\n";
    assert_eq!(fenced_block(&format!("Sure.\n```yml\n{yaml}```")), (yaml.to_string(), Some(BookFormat::Yaml)));
    // a labelled block wins over a longer unlabelled one; an unclosed fence runs to the end
    let two = format!("```\n{}\n```\n```toml\n{SMALL}```", "x".repeat(900));
    assert_eq!(fenced_block(&two).0, SMALL);
    assert_eq!(fenced_block(&format!("```toml\n{SMALL}")).0, SMALL);
    assert_eq!(fenced_block(&format!("~~~\n{SMALL}~~~\n")), (SMALL.to_string(), None));
}

#[test]
fn without_fences_the_prose_around_is_dropped() {
    let reply = format!("Here is the rule-book you asked for.\n\n{SMALL}\nI kept the replies short, as asked.\nTell me what to change.");
    let (text, label) = fenced_block(&reply);
    assert_eq!(label, None);
    assert!(text.starts_with("name = \"Acme\"") && !text.contains("Tell me"), "{text}");
    RuleBook::from_toml_str(&text).unwrap();
}

#[test]
fn an_answer_in_the_other_format_is_converted() {
    let yaml = convert(SMALL, BookFormat::Toml, BookFormat::Yaml).unwrap();
    let (text, book, warnings) = check(&format!("```yaml\n{yaml}```"), &opts(BookFormat::Toml)).unwrap();
    assert_eq!((book.name.as_str(), warnings.len()), ("Acme", 0));
    assert_eq!(RuleBook::from_toml_str(&text).unwrap().intents[0].reply, "Nine to five.");
    // unlabelled: read as whichever format it parses in
    let (text, ..) = check(&format!("```\n{yaml}```"), &opts(BookFormat::Toml)).unwrap();
    RuleBook::from_toml_str(&text).unwrap();
    let (text, ..) = check(&format!("```\n{SMALL}```"), &opts(BookFormat::Yaml)).unwrap();
    RuleBook::from_yaml_str(&text).unwrap();
    // YAML in any order, with nulls, still makes TOML
    let shuffled = "intent:\n- name: hours\n  confirm: null\n  examples: [when are you open]\n  reply: Nine to five.\n  action: {kind: end_call}\nfallback: [Sorry?]\nname: Acme\ngreeting: Hello.\n";
    let toml = convert(shuffled, BookFormat::Yaml, BookFormat::Toml).unwrap();
    let b = RuleBook::from_toml_str(&toml).unwrap();
    assert!(b.intents[0].confirm.is_none() && matches!(b.intents[0].action, Some(super::super::Action::EndCall)), "{toml}");
    // fields in the schema's order
    let yaml = convert(SMALL, BookFormat::Toml, BookFormat::Yaml).unwrap();
    assert_eq!(yaml, "name: Acme\ngreeting: Hello, Acme.\nfallback:\n- Sorry, I can tell you our hours.\nintent:\n- name: hours\n  examples:\n  - when are you open\n  reply: Nine to five.\n");
    assert!(toml.starts_with("name = \"Acme\"\ngreeting = \"Hello.\"\n"), "{toml}");
}

#[test]
fn the_clinic_agent_survives_a_round_trip_through_yaml() {
    let clinic = include_str!("../../../../agents/clinic.toml");
    let yaml = convert(clinic, BookFormat::Toml, BookFormat::Yaml).unwrap();
    let back = convert(&yaml, BookFormat::Yaml, BookFormat::Toml).unwrap();
    let a = RuleBook::from_toml_str(clinic).unwrap();
    let (b, c) = (RuleBook::from_yaml_str(&yaml).unwrap(), RuleBook::from_toml_str(&back).unwrap());
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    assert_eq!(format!("{a:?}"), format!("{c:?}"));
}

#[test]
fn errors_block_and_warnings_do_not() {
    let broken = SMALL.replace("greeting = \"Hello, Acme.\"", "greeting = Hello");
    let (text, problems) = check(&format!("```toml\n{broken}```"), &opts(BookFormat::Toml)).unwrap_err();
    assert_eq!(text, broken);
    assert_eq!(problems.len(), 1);
    assert!(problems[0].at.starts_with("line 2, column "), "{:?}", problems[0]);
    let unfilled = SMALL.replace("Nine to five.", "Nine to five, {name}.");
    let (_, problems) = check(&format!("```toml\n{unfilled}```"), &opts(BookFormat::Toml)).unwrap_err();
    assert_eq!(problems.iter().map(|p| p.at.as_str()).collect::<Vec<_>>(), ["intent.hours.reply"]);
    let long = SMALL.replace("Nine to five.", &"We are open. ".repeat(20));
    let (_, _, warnings) = check(&format!("```toml\n{long}```"), &opts(BookFormat::Toml)).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
}

#[test]
fn the_system_prompt_is_stable_and_teaches_the_format() {
    let t = system_prompt(&opts(BookFormat::Toml));
    assert_eq!(t, system_prompt(&opts(BookFormat::Toml)));
    assert!(t.contains(SCHEMA) && t.contains(EXAMPLE) && t.contains("in one ```toml fenced block"));
    assert!(t.contains("{http.FIELD}") && t.contains("at most 35 words and 220 characters"), "templates and budget");
    let y = system_prompt(&opts(BookFormat::Yaml));
    assert!(y.contains("```yaml\n") && !y.contains(EXAMPLE));
    let example = y.split("```yaml\n").nth(1).unwrap().split("```").next().unwrap();
    assert_eq!(RuleBook::from_yaml_str(example).unwrap().name, "Riverside Family Clinic");
    assert!(repair(&[Lint { severity: Severity::Error, at: "greeting".into(), message: "is empty".into() }], BookFormat::Yaml).contains("error: greeting: is empty"));
}

#[test]
fn documents_are_read_as_text_in_path_order() {
    let dir = std::env::temp_dir().join(format!("cf-author-docs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("faq")).unwrap();
    std::fs::write(dir.join("sop.md"), "# Booking\n\nWe book **same-day** visits.\n").unwrap();
    std::fs::write(dir.join("faq/hours.html"), "<html><body><p>Open 9&ndash;5.</p><script>x()</script></body></html>").unwrap();
    std::fs::write(dir.join("faq/parking.txt"), "Parking is free.").unwrap();
    std::fs::write(dir.join("faq/empty.txt"), "  \n").unwrap();
    std::fs::write(dir.join("logo.png"), [0u8, 1, 2]).unwrap();
    let docs = read_documents(&dir).unwrap();
    let got: Vec<(&str, &str)> = docs.iter().map(|d| (d.name.as_str(), d.text.as_str())).collect();
    assert_eq!(got, [("faq/hours.html", "Open 9–5."), ("faq/parking.txt", "Parking is free."), ("sop.md", "Booking\n\nWe book same-day visits.")]);
    assert!(documents(&docs).contains("<document name=\"faq/parking.txt\">\nParking is free.\n</document>"));
    assert_eq!(read_documents(&dir.join("sop.md")).unwrap().len(), 1);
    let e = read_documents(&dir.join("faq/empty.txt")).unwrap_err().to_string();
    assert!(e.contains("no documents with text"), "{e}");
    assert!(read_documents(&dir.join("nope")).unwrap_err().to_string().contains("does not exist"));
    let _ = std::fs::remove_dir_all(&dir);
}
