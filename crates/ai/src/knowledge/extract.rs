//! Plain text out of a document: text as is, Markdown without its markup, HTML without tags,
//! scripts and styles (entities decoded, block elements as line breaks), PDF from its text
//! layer ([`super::pdf`]).

use super::pdf;
use crate::{AiError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Html,
    Pdf,
}

impl Format {
    /// From a file name or media type: `.md`/`text/markdown`, `.html`/`text/html`,
    /// `.pdf`/`application/pdf`, `.txt`/`text/plain` (or no extension).
    pub fn guess(name_or_type: &str) -> Result<Format> {
        let n = name_or_type.to_ascii_lowercase();
        if n.ends_with(".md") || n.ends_with(".markdown") || n.contains("markdown") {
            Ok(Format::Markdown)
        } else if n.ends_with(".html") || n.ends_with(".htm") || n.contains("text/html") {
            Ok(Format::Html)
        } else if n.ends_with(".pdf") || n.contains("application/pdf") {
            Ok(Format::Pdf)
        } else if n.ends_with(".txt") || n.contains("text/plain") || !n.contains('.') {
            Ok(Format::Text)
        } else {
            Err(AiError::Config(format!("unsupported document type `{}`: use .txt, .md, .html or .pdf", n.rsplit('/').next().unwrap_or(&n))))
        }
    }

    /// The content decides first (`%PDF-` is a PDF whatever it is called), then the name or
    /// media type.
    pub fn detect(name_or_type: &str, raw: &[u8]) -> Result<Format> {
        if pdf::is_pdf(raw) { Ok(Format::Pdf) } else { Format::guess(name_or_type) }
    }
}

/// Why a document has no text to index. Each has a stable [`code`](ExtractError::code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    #[error("the PDF is password-protected: remove the password and upload it again")]
    Encrypted,
    #[error("the PDF cannot be read ({0}): it may be damaged or incomplete")]
    Damaged(String),
    #[error("the PDF has no text layer (a scan or images only): run OCR on it first")]
    NoTextLayer,
    #[error("the document is not UTF-8 text")]
    NotUtf8,
    #[error("the document has no text")]
    Empty,
}

impl ExtractError {
    pub fn code(&self) -> &'static str {
        match self {
            ExtractError::Encrypted => "pdf_encrypted",
            ExtractError::Damaged(_) => "pdf_unreadable",
            ExtractError::NoTextLayer => "pdf_no_text",
            ExtractError::NotUtf8 => "invalid_encoding",
            ExtractError::Empty => "empty_document",
        }
    }
}

/// A document's text and the title it declares, if any (a PDF's metadata title, a Markdown
/// document's first heading, an HTML page's `<title>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub text: String,
    pub title: Option<String>,
}

impl Extracted {
    /// The declared title, else the text's first line (at most 200 characters).
    pub fn title_or_first_line(&self) -> String {
        let t = self.title.clone().unwrap_or_else(|| self.text.lines().next().unwrap_or_default().to_string());
        t.chars().take(200).collect()
    }
}

/// The document's text, whitespace tidied (paragraphs kept as blank lines). PDF parsing is CPU
/// work: call it off the async runtime (`spawn_blocking`) for large documents.
pub fn extract(raw: &[u8], format: Format) -> std::result::Result<Extracted, ExtractError> {
    let utf8 = || std::str::from_utf8(raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw)).map_err(|_| ExtractError::NotUtf8);
    let (text, title) = match format {
        Format::Text => (utf8()?.to_string(), None),
        Format::Markdown => {
            let s = utf8()?;
            (markdown(s), s.lines().map(str::trim).find(|l| l.starts_with('#')).map(|l| l.trim_start_matches('#').trim().to_string()))
        }
        Format::Html => {
            let s = utf8()?;
            (html(s), html_title(s))
        }
        Format::Pdf => pdf::read(raw)?,
    };
    let text = tidy(&text);
    if text.is_empty() {
        return Err(ExtractError::Empty);
    }
    Ok(Extracted { text, title: title.map(|t| tidy(&t)).filter(|t| !t.is_empty()) })
}

fn html_title(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    let open = lower.find("<title")?;
    let start = open + lower[open..].find('>')? + 1;
    let end = start + lower[start..].find("</title")?;
    Some(entities(&s[start..end]))
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
        let e = extract(md.as_bytes(), Format::Markdown).unwrap();
        assert_eq!(e.text, "Opening hours\n\nWe are open weekdays from 8 to 6.\n\nSaturdays: 9 to 1\nBook online\n\nday hours\n\nSun closed\n\ncode stays");
        assert_eq!(e.title.as_deref(), Some("Opening hours"));
    }

    #[test]
    fn html_loses_tags_scripts_and_entities() {
        let h = "<html><head><title>Getting &amp; parking</title><style>p{}</style></head><body><h1>Parking</h1><p>Free &amp; close &#8212; level&nbsp;2.</p><script>alert(1)</script><!-- note --><ul><li>Bikes</li><li>Cars</li></ul><table><tr><td>Mon</td><td>8&ndash;6</td></tr></table></body></html>";
        let e = extract(h.as_bytes(), Format::Html).unwrap();
        assert_eq!(e.text, "Parking\n\nFree & close — level 2.\n\nBikes\n\nCars\n\nMon 8–6");
        assert!(!e.text.contains("alert") && !e.text.contains("note") && !e.text.contains('<'));
        assert_eq!(e.title.as_deref(), Some("Getting & parking"));
    }

    #[test]
    fn formats_are_guessed_and_unsupported_ones_named() {
        assert_eq!(Format::guess("faq.md").unwrap(), Format::Markdown);
        assert_eq!(Format::guess("text/html; charset=utf-8").unwrap(), Format::Html);
        assert_eq!(Format::guess("notes.txt").unwrap(), Format::Text);
        assert_eq!(Format::guess("Policy.PDF").unwrap(), Format::Pdf);
        assert_eq!(Format::guess("application/pdf").unwrap(), Format::Pdf);
        assert!(Format::guess("deck.pptx").unwrap_err().to_string().contains("pptx"));
        // the content wins over the name
        assert_eq!(Format::detect("upload.bin", b"%PDF-1.4\n...").unwrap(), Format::Pdf);
        assert_eq!(Format::detect("notes.txt", b"plain words").unwrap(), Format::Text);
    }

    #[test]
    fn text_must_be_utf8_and_not_empty() {
        assert_eq!(extract(b"caf\xe9", Format::Text).unwrap_err(), ExtractError::NotUtf8);
        assert_eq!(extract(b"\xef\xbb\xbfwith a BOM", Format::Text).unwrap().text, "with a BOM");
        let e = extract(b"<p> </p>", Format::Html).unwrap_err();
        assert_eq!((e.code(), e.to_string().as_str()), ("empty_document", "the document has no text"));
    }

    const CLINIC_PDF: &[u8] = include_bytes!("../../../../examples/clinic-kb/visitor-policy.pdf");

    /// A one-page PDF (uncompressed, Helvetica) with `content` as its content stream.
    fn one_page_pdf(content: &str) -> Vec<u8> {
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
            format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len() + 1),
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_string(),
        ];
        let mut out = b"%PDF-1.4\n".to_vec();
        let mut offsets = Vec::new();
        for (i, o) in objects.iter().enumerate() {
            offsets.push(out.len());
            out.extend(format!("{} 0 obj\n{o}\nendobj\n", i + 1).bytes());
        }
        let xref = out.len();
        out.extend(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).bytes());
        for o in offsets {
            out.extend(format!("{o:010} 00000 n \n").bytes());
        }
        out.extend(format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).bytes());
        out
    }

    #[test]
    fn a_text_pdf_gives_its_paragraphs_and_title() {
        let e = extract(CLINIC_PDF, Format::Pdf).unwrap();
        assert_eq!(e.title.as_deref(), Some("Patient and visitor policy"));
        assert!(e.text.starts_with("Patient and visitor policy\n"), "{}", e.text);
        // a paragraph wrapped over several lines comes out as one line, its words whole
        let para = e.text.lines().find(|l| l.starts_with("Free professional interpreters")).unwrap_or_else(|| panic!("{}", e.text));
        assert!(para.contains("in more than 40 languages, including Spanish, Mandarin, Arabic and American Sign Language."), "{para}");
        assert!(para.ends_with("we do not ask children to interpret for their parents."), "{para}");
        // and the second page is read too
        assert!(e.text.contains("Anyone who is aggressive may be asked to leave"), "{}", e.text);
        assert!(e.text.lines().any(|l| l == "Face masks"), "headings stay lines of their own: {}", e.text);
        // a hand-made one: text operators, no metadata
        let e = extract(&one_page_pdf("BT /F1 12 Tf 72 700 Td (Walk-in flu shots on Tuesdays.) Tj ET"), Format::Pdf).unwrap();
        assert_eq!((e.text.as_str(), e.title), ("Walk-in flu shots on Tuesdays.", None));
    }

    #[test]
    fn damaged_locked_and_scanned_pdfs_are_told_apart() {
        // cut off half way: no cross-reference table, no trailer
        let e = extract(&CLINIC_PDF[..CLINIC_PDF.len() / 2], Format::Pdf).unwrap_err();
        assert_eq!(e.code(), "pdf_unreadable", "{e}");
        // garbage after the header
        let mut junk = b"%PDF-1.7\n".to_vec();
        junk.extend((0..4000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
        assert_eq!(extract(&junk, Format::Pdf).unwrap_err().code(), "pdf_unreadable");
        // not a PDF at all
        assert_eq!(extract(b"hello", Format::Pdf).unwrap_err().code(), "pdf_unreadable");
        // a user password (made by testdata/make-locked-pdf.py): its text is not readable
        let e = extract(include_bytes!("testdata/locked.pdf"), Format::Pdf).unwrap_err();
        assert_eq!(e, ExtractError::Encrypted);
        assert!(e.to_string().contains("password"), "{e}");
        // a page with only a drawing (as a scan has only an image): no text layer
        let e = extract(&one_page_pdf("0 0 1 rg 72 72 200 100 re f"), Format::Pdf).unwrap_err();
        assert_eq!((e.code(), e), ("pdf_no_text", ExtractError::NoTextLayer));
    }
}
