//! Plain text out of a document: text as is, Markdown without its markup, HTML without tags,
//! scripts and styles (entities decoded, block elements as line breaks).

use crate::{AiError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Html,
}

impl Format {
    /// From a file name or media type: `.md`/`text/markdown`, `.html`/`text/html`, else text.
    pub fn guess(name_or_type: &str) -> Result<Format> {
        let n = name_or_type.to_ascii_lowercase();
        if n.ends_with(".md") || n.ends_with(".markdown") || n.contains("markdown") {
            Ok(Format::Markdown)
        } else if n.ends_with(".html") || n.ends_with(".htm") || n.contains("text/html") {
            Ok(Format::Html)
        } else if n.ends_with(".txt") || n.contains("text/plain") || !n.contains('.') {
            Ok(Format::Text)
        } else if n.ends_with(".pdf") || n.contains("application/pdf") {
            Err(AiError::Config("PDF documents are not supported yet: extract the text first (e.g. `pdftotext`)".into()))
        } else {
            Err(AiError::Config(format!("unsupported document type `{}`: use .txt, .md or .html", n.rsplit('/').next().unwrap_or(&n))))
        }
    }
}

/// The document's text, whitespace tidied (paragraphs kept as blank lines).
pub fn extract(raw: &str, format: Format) -> String {
    let text = match format {
        Format::Text => raw.to_string(),
        Format::Markdown => markdown(raw),
        Format::Html => html(raw),
    };
    tidy(&text)
}

fn tidy(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank = 0;
    for line in s.lines() {
        let l = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if l.is_empty() {
            blank += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank > 0 { "\n\n" } else { "\n" });
        }
        blank = 0;
        out.push_str(&l);
    }
    out
}

fn markdown(s: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in s.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let t = t.trim_start_matches('#').trim_start_matches('>').trim_start();
        let t = t.strip_prefix("- ").or_else(|| t.strip_prefix("* ")).or_else(|| t.strip_prefix("+ ")).unwrap_or(t);
        if t.chars().all(|c| matches!(c, '-' | '=' | '*' | '_' | ' ' | '|' | ':')) && !t.is_empty() {
            out.push('\n'); // rules and table separators
            continue;
        }
        out.push_str(&inline_markdown(&t.replace('|', " ")));
        out.push('\n');
    }
    out
}

/// `[text](url)` → text, `![alt](src)` → alt, emphasis and code marks dropped.
fn inline_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < s.len() {
        let c = s[i..].chars().next().unwrap_or(' ');
        if c == '!' && b.get(i + 1) == Some(&b'[') {
            i += 1;
            continue;
        }
        if c == '['
            && let Some(close) = s[i..].find("](")
            && let Some(end) = s[i + close..].find(')')
        {
            out.push_str(&s[i + 1..i + close]);
            i += close + end + 1;
            continue;
        }
        if !matches!(c, '*' | '_' | '`') {
            out.push(c);
        }
        i += c.len_utf8();
    }
    out
}

fn html(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len() / 2);
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        if rest.starts_with('<') {
            let l = &lower[i..];
            // skip whole script/style/head/comment blocks
            let skip = [("<!--", "-->"), ("<script", "</script>"), ("<style", "</style>"), ("<head", "</head>"), ("<noscript", "</noscript>")].into_iter().find(|(open, _)| l.starts_with(open));
            if let Some((_, close)) = skip {
                i += l.find(close).map_or(s.len() - i, |p| p + close.len());
                continue;
            }
            let end = rest.find('>').map_or(rest.len(), |p| p + 1);
            let tag = l[1..end.min(l.len())].trim_start_matches('/').split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or_default();
            if matches!(tag, "p" | "div" | "br" | "li" | "tr" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "section" | "article" | "table" | "ul" | "ol" | "header" | "footer") {
                out.push('\n');
            } else if matches!(tag, "td" | "th") {
                out.push(' ');
            }
            i += end;
            continue;
        }
        let next = rest.find('<').unwrap_or(rest.len());
        out.push_str(&entities(&rest[..next]));
        i += next;
    }
    out
}

fn entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let end = rest.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let ch = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" | "#39" => Some('\''),
                "nbsp" => Some(' '),
                "ndash" => Some('–'),
                "mdash" => Some('—'),
                "hellip" => Some('…'),
                "rsquo" | "lsquo" => Some('\''),
                "rdquo" | "ldquo" => Some('"'),
                n if n.starts_with("#x") || n.starts_with("#X") => u32::from_str_radix(&n[2..], 16).ok().and_then(char::from_u32),
                n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            ch.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_loses_its_markup_and_keeps_its_words() {
        let md = "# Opening hours\n\nWe are **open** weekdays from 8 to 6.\n\n- Saturdays: 9 to 1\n- [Book online](https://x.example/book)\n\n| day | hours |\n|---|---|\n| Sun | closed |\n\n```\ncode stays\n```\n";
        let t = extract(md, Format::Markdown);
        assert_eq!(t, "Opening hours\n\nWe are open weekdays from 8 to 6.\n\nSaturdays: 9 to 1\nBook online\n\nday hours\n\nSun closed\n\ncode stays");
    }

    #[test]
    fn html_loses_tags_scripts_and_entities() {
        let h = "<html><head><title>x</title><style>p{}</style></head><body><h1>Parking</h1><p>Free &amp; close &#8212; level&nbsp;2.</p><script>alert(1)</script><!-- note --><ul><li>Bikes</li><li>Cars</li></ul><table><tr><td>Mon</td><td>8&ndash;6</td></tr></table></body></html>";
        let t = extract(h, Format::Html);
        assert_eq!(t, "Parking\n\nFree & close — level 2.\n\nBikes\n\nCars\n\nMon 8–6");
        assert!(!t.contains("alert") && !t.contains("note") && !t.contains('<'));
    }

    #[test]
    fn formats_are_guessed_and_unsupported_ones_named() {
        assert_eq!(Format::guess("faq.md").unwrap(), Format::Markdown);
        assert_eq!(Format::guess("text/html; charset=utf-8").unwrap(), Format::Html);
        assert_eq!(Format::guess("notes.txt").unwrap(), Format::Text);
        assert!(Format::guess("scan.pdf").unwrap_err().to_string().contains("PDF"));
        assert!(Format::guess("deck.pptx").unwrap_err().to_string().contains("pptx"));
    }
}
