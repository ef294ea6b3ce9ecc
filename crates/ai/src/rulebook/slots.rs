//! Slot values from what the caller said: dates, times, numbers, names, phone numbers, yes/no.
//! Transcripts come from STT, so both digits ("3 p.m.") and words ("three thirty") are handled.

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};

use super::schema::SlotKind;

/// Lower-case words with punctuation removed ("p.m." → "pm").
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace("p.m.", "pm")
        .replace("a.m.", "am")
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '?' | '!' | ';'))
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != ':').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

const UNITS: [&str; 20] = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"];
const TENS: [&str; 8] = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];

fn small_number(w: &str) -> Option<u32> {
    if let Ok(n) = w.parse() {
        return Some(n);
    }
    if let Some(i) = UNITS.iter().position(|u| *u == w) {
        return Some(i as u32);
    }
    TENS.iter().position(|t| *t == w).map(|i| 20 + 10 * i as u32)
}

/// A number in digits or English words ("two hundred and forty five" → 245).
pub fn number(text: &str) -> Option<u64> {
    let ws = words(text);
    if let Some(n) = ws.iter().find_map(|w| w.replace(',', "").parse::<u64>().ok()) {
        return Some(n);
    }
    let (mut total, mut current, mut seen) = (0u64, 0u64, false);
    for w in &ws {
        match w.as_str() {
            "hundred" => { current = current.max(1) * 100; seen = true }
            "thousand" => { total += current.max(1) * 1000; current = 0; seen = true }
            "and" if seen => {}
            w => match small_number(w) {
                Some(n) => { current += n as u64; seen = true }
                None if seen => break,
                None => {}
            },
        }
    }
    seen.then_some(total + current)
}

fn weekday(w: &str) -> Option<Weekday> {
    Some(match w {
        "monday" => Weekday::Mon, "tuesday" => Weekday::Tue, "wednesday" => Weekday::Wed, "thursday" => Weekday::Thu,
        "friday" => Weekday::Fri, "saturday" => Weekday::Sat, "sunday" => Weekday::Sun, _ => return None,
    })
}

const MONTHS: [&str; 12] = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];

fn ordinal(w: &str) -> Option<u32> {
    let digits: String = w.chars().take_while(|c| c.is_ascii_digit()).collect();
    if !digits.is_empty() && (w.len() == digits.len() || ["st", "nd", "rd", "th"].contains(&&w[digits.len()..])) {
        return digits.parse().ok().filter(|d| (1..=31).contains(d));
    }
    const ORD: [&str; 31] = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth", "twentieth", "twenty-first", "twenty-second", "twenty-third", "twenty-fourth", "twenty-fifth", "twenty-sixth", "twenty-seventh", "twenty-eighth", "twenty-ninth", "thirtieth", "thirty-first"];
    ORD.iter().position(|o| *o == w).map(|i| i as u32 + 1)
}

/// A date relative to `today`: today, tomorrow, day after tomorrow, (next) weekday, "the 5th",
/// "December 3rd", "3rd of December", ISO dates. Past days of the month roll to next month.
pub fn date(text: &str, today: NaiveDate) -> Option<NaiveDate> {
    let ws = words(text);
    let joined = ws.join(" ");
    if joined.contains("day after tomorrow") {
        return Some(today + Duration::days(2));
    }
    if ws.iter().any(|w| w == "tomorrow") {
        return Some(today + Duration::days(1));
    }
    if ws.iter().any(|w| w == "today" || w == "tonight") {
        return Some(today);
    }
    if let Some(d) = ws.iter().find_map(|w| NaiveDate::parse_from_str(w, "%Y-%m-%d").ok()) {
        return Some(d);
    }
    // A weekday means its next occurrence ("next Monday" too); today's weekday means next week.
    if let Some(wd) = ws.iter().find_map(|w| weekday(w)) {
        let ahead = (wd.num_days_from_monday() as i64 - today.weekday().num_days_from_monday() as i64).rem_euclid(7);
        return Some(today + Duration::days(if ahead == 0 { 7 } else { ahead }));
    }
    let month = ws.iter().position(|w| MONTHS.contains(&w.as_str()));
    let day = ws.iter().find_map(|w| ordinal(w));
    match (month, day) {
        (Some(mi), Some(d)) => {
            let m = MONTHS.iter().position(|x| *x == ws[mi]).map(|x| x as u32 + 1)?;
            let this_year = NaiveDate::from_ymd_opt(today.year(), m, d)?;
            Some(if this_year < today { NaiveDate::from_ymd_opt(today.year() + 1, m, d)? } else { this_year })
        }
        (None, Some(d)) if ws.iter().any(|w| w == "the" || w.ends_with("th") || w.ends_with("st") || w.ends_with("nd") || w.ends_with("rd")) => {
            let this_month = NaiveDate::from_ymd_opt(today.year(), today.month(), d);
            match this_month {
                Some(x) if x >= today => Some(x),
                _ => {
                    let (y, m) = if today.month() == 12 { (today.year() + 1, 1) } else { (today.year(), today.month() + 1) };
                    NaiveDate::from_ymd_opt(y, m, d)
                }
            }
        }
        _ => None,
    }
}

/// A time of day: "3 pm", "3:30", "10 30 am", "half past two", "quarter to four", "noon",
/// "three o'clock". Hours 1–7 without am/pm are taken as afternoon (office hours).
pub fn time(text: &str) -> Option<NaiveTime> {
    let ws = words(text);
    if ws.iter().any(|w| w == "noon" || w == "midday") {
        return NaiveTime::from_hms_opt(12, 0, 0);
    }
    let pm = ws.iter().any(|w| w == "pm" || w.ends_with("pm") || w == "afternoon" || w == "evening");
    let am = ws.iter().any(|w| w == "am" || w.ends_with("am") || w == "morning");
    let (mut h, mut m) = (None::<u32>, 0u32);
    for (i, w) in ws.iter().enumerate() {
        let core = w.trim_end_matches("pm").trim_end_matches("am");
        if let Some((a, b)) = core.split_once(':') {
            if let (Ok(a), Ok(b)) = (a.parse(), b.parse()) {
                h = Some(a);
                m = b;
                break;
            }
        }
        if (w == "past" || w == "to") && i > 0 && i + 1 < ws.len() {
            let mins = match ws[i - 1].as_str() { "half" => 30, "quarter" => 15, x => small_number(x).unwrap_or(0) };
            if let Some(hh) = small_number(&ws[i + 1]) {
                if w == "past" { h = Some(hh); m = mins } else { h = Some((hh + 11) % 12 + 0); m = 60 - mins }
                break;
            }
        }
        let is_hour_word = ws.get(i + 1).is_some_and(|n| matches!(n.as_str(), "pm" | "am" | "o'clock" | "oclock" | "o" | "in"))
            || (i > 0 && ws[i - 1] == "at")
            || ws.get(i + 1).and_then(|n| small_number(n)).is_some_and(|n| (10..60).contains(&n))
            || core != w.as_str();
        if let Some(v) = small_number(core).filter(|v| (1..=12).contains(v)).filter(|_| is_hour_word) {
            h = Some(v);
            // "ten thirty", "10 30", "three fifteen"
            if let Some(next) = ws.get(i + 1).and_then(|n| small_number(n)).filter(|n| (1..60).contains(n)) {
                m = next;
                if let Some(n2) = ws.get(i + 2).and_then(|n| small_number(n)).filter(|n| (1..10).contains(n)) {
                    m += n2;
                }
            }
            break;
        }
    }
    let mut h = h?;
    if pm && h < 12 {
        h += 12;
    } else if am && h == 12 {
        h = 0;
    } else if !pm && !am && (1..=7).contains(&h) {
        h += 12;
    }
    NaiveTime::from_hms_opt(h, m.min(59), 0)
}

const NOT_NAMES: [&str; 36] = ["yes", "no", "yeah", "sure", "okay", "ok", "hi", "hello", "um", "uh", "please", "thanks", "thank", "you", "i", "a", "the", "to", "book", "appointment", "want", "would", "like", "an",
    "hmm", "mm", "er", "ah", "oh", "well", "so", "what", "sorry", "pardon", "huh", "wait"];

/// A person's name: after "my name is" / "this is" / "I'm" / "it's", or (when `bare`) the
/// whole answer if it looks like one or two name words.
pub fn name(text: &str, bare: bool) -> Option<String> {
    let ws = words(text);
    let joined = ws.join(" ");
    let after = ["my name is ", "name's ", "this is ", "i'm ", "i am ", "it's ", "it is ", "call me "]
        .iter()
        .find_map(|p| joined.find(p).map(|i| joined[i + p.len()..].to_string()));
    let cand: Vec<&str> = match &after {
        Some(rest) => rest.split_whitespace().take(3).collect(),
        None if bare => ws.iter().map(String::as_str).filter(|w| !NOT_NAMES.contains(w)).collect(),
        None => return None,
    };
    let cand: Vec<&str> = cand.into_iter().take_while(|w| !matches!(*w, "and" | "for" | "on" | "at" | "please" | "tomorrow" | "today")).filter(|w| w.chars().all(|c| c.is_alphabetic() || c == '-' || c == '\'')).take(3).collect();
    if cand.is_empty() || (after.is_none() && cand.len() > 3) {
        return None;
    }
    Some(cand.iter().map(|w| { let mut c = w.chars(); c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default() }).collect::<Vec<_>>().join(" "))
}

/// Yes / no answers.
pub fn yes_no(text: &str) -> Option<bool> {
    let ws = words(text);
    let has = |xs: &[&str]| ws.iter().any(|w| xs.contains(&w.as_str()));
    let joined = ws.join(" ");
    if has(&["no", "nope", "nah", "don't", "dont", "not", "cancel", "wrong"]) {
        return Some(false);
    }
    if has(&["yes", "yeah", "yep", "yup", "sure", "correct", "right", "okay", "ok", "perfect", "great", "absolutely", "definitely", "please"]) || joined.contains("go ahead") || joined.contains("sounds good") {
        return Some(true);
    }
    None
}

/// A phone number: 7 to 15 digits, spoken as digits or digit words.
pub fn phone(text: &str) -> Option<String> {
    let mut digits = String::new();
    for w in words(text) {
        if w.chars().all(|c| c.is_ascii_digit() || c == '-' || c == '+') {
            digits.extend(w.chars().filter(|c| c.is_ascii_digit()));
        } else if let Some(d) = UNITS[..10].iter().position(|u| *u == w).or((w == "oh").then_some(0)) {
            digits.push(char::from(b'0' + d as u8));
        }
    }
    (7..=15).contains(&digits.len()).then_some(digits)
}

/// Extracts a value of `kind`; returns (value for the timeline, spoken form for replies).
pub fn extract(kind: SlotKind, text: &str, today: NaiveDate, bare: bool) -> Option<String> {
    match kind {
        SlotKind::Date => date(text, today).map(|d| d.format("%A, %B %-d").to_string()),
        SlotKind::Time => time(text).map(|t| t.format("%-I:%M %p").to_string().replace(":00 ", " ")),
        SlotKind::Number => number(text).map(|n| n.to_string()),
        SlotKind::Name => name(text, bare),
        SlotKind::Phone => phone(text),
        SlotKind::YesNo => yes_no(text).map(|b| if b { "yes" } else { "no" }.to_string()),
        SlotKind::Text => bare.then(|| text.trim().to_string()).filter(|t| !t.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn dates() {
        let today = d(2026, 11, 24); // a Tuesday
        assert_eq!(date("tomorrow please", today), Some(d(2026, 11, 25)));
        assert_eq!(date("Today.", today), Some(today));
        assert_eq!(date("the day after tomorrow", today), Some(d(2026, 11, 26)));
        assert_eq!(date("on Friday", today), Some(d(2026, 11, 27)));
        assert_eq!(date("next Monday", today), Some(d(2026, 11, 30)));
        assert_eq!(date("Tuesday", today), Some(d(2026, 12, 1)));
        assert_eq!(date("December 3rd", today), Some(d(2026, 12, 3)));
        assert_eq!(date("the 3rd of December", today), Some(d(2026, 12, 3)));
        assert_eq!(date("January fifth", today), Some(d(2027, 1, 5)));
        assert_eq!(date("on the 5th", today), Some(d(2026, 12, 5)));
        assert_eq!(date("on the 28th", today), Some(d(2026, 11, 28)));
        assert_eq!(date("2026-12-09", today), Some(d(2026, 12, 9)));
        assert_eq!(date("I'd like to book", today), None);
    }

    #[test]
    fn times() {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0);
        assert_eq!(time("at 3 p.m."), t(15, 0));
        assert_eq!(time("3pm"), t(15, 0));
        assert_eq!(time("10:30 am"), t(10, 30));
        assert_eq!(time("3:45"), t(15, 45));
        assert_eq!(time("half past two"), t(14, 30));
        assert_eq!(time("quarter to four"), t(15, 45));
        assert_eq!(time("noon"), t(12, 0));
        assert_eq!(time("ten thirty in the morning"), t(10, 30));
        assert_eq!(time("at three"), t(15, 0));
        assert_eq!(time("three o'clock"), t(15, 0));
        assert_eq!(time("at 9 am"), t(9, 0));
        assert_eq!(time("tomorrow at 11"), t(11, 0));
        assert_eq!(time("I have 3 children"), None);
    }

    #[test]
    fn names_numbers_phones_yes_no() {
        assert_eq!(name("My name is Priya Shah.", false).as_deref(), Some("Priya Shah"));
        assert_eq!(name("Hi, this is john and I need help", false).as_deref(), Some("John"));
        assert_eq!(name("Priya Shah", true).as_deref(), Some("Priya Shah"));
        assert_eq!(name("what are your hours", false), None);
        assert_eq!(number("two hundred and forty five"), Some(245));
        assert_eq!(number("room 12"), Some(12));
        assert_eq!(number("three thousand two hundred"), Some(3200));
        assert_eq!(phone("five five five one two three four five six seven"), Some("5551234567".into()));
        assert_eq!(phone("+1 555-123-4567"), Some("15551234567".into()));
        assert_eq!(yes_no("Yes please."), Some(true));
        assert_eq!(yes_no("Yeah, that's right"), Some(true));
        assert_eq!(yes_no("No, that's wrong"), Some(false));
        assert_eq!(yes_no("maybe later"), None);
        let today = d(2026, 11, 24);
        assert_eq!(extract(SlotKind::Date, "tomorrow", today, true).as_deref(), Some("Wednesday, November 25"));
        assert_eq!(extract(SlotKind::Time, "at 3:30 pm", today, true).as_deref(), Some("3:30 PM"));
        assert_eq!(extract(SlotKind::Time, "at 3 pm", today, true).as_deref(), Some("3 PM"));
    }
}
