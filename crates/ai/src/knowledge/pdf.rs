//! Text out of a PDF: its text layer, read with `pdf-extract` (on `lopdf`), with the lines a
//! paragraph was wrapped into joined again (and words hyphenated at a line end made whole).
//! A PDF that needs a password, a damaged one and one without a text layer (a scan) each get
//! their own error; the reader's panics on malformed content are caught and reported as damage.

use pdf_extract::{Document, Object, PlainTextOutput, decode_text_string, output_doc};

use super::extract::ExtractError;

/// `%PDF-` within the first KiB (the format allows a little junk before it).
pub fn is_pdf(raw: &[u8]) -> bool {
    raw[..raw.len().min(1024)].windows(5).any(|w| w == b"%PDF-")
}

/// The text of a PDF and the title in its metadata (if it has one).
pub fn read(raw: &[u8]) -> Result<(String, Option<String>), ExtractError> {
    if !is_pdf(raw) {
        return Err(ExtractError::Damaged("no %PDF- header".into()));
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read_unguarded(raw))) {
        Ok(r) => r,
        Err(p) => {
            let why = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_else(|| "the PDF reader failed".into());
            Err(ExtractError::Damaged(why.chars().take(200).collect()))
        }
    }
}

fn read_unguarded(raw: &[u8]) -> Result<(String, Option<String>), ExtractError> {
    // lopdf opens a PDF protected by an owner password only (the empty user password works);
    // one that needs a user password stays encrypted
    let doc = Document::load_mem(raw).map_err(|e| ExtractError::Damaged(e.to_string().chars().take(200).collect()))?;
    if doc.is_encrypted() {
        return Err(ExtractError::Encrypted);
    }
    if doc.get_pages().is_empty() {
        return Err(ExtractError::Damaged("it has no pages".into()));
    }
    let mut text = String::new();
    output_doc(&doc, &mut PlainTextOutput::new(&mut text)).map_err(|e| ExtractError::Damaged(e.to_string().chars().take(200).collect()))?;
    let text = unwrap_lines(&text);
    if text.trim().is_empty() {
        return Err(ExtractError::NoTextLayer);
    }
    Ok((text, title(&doc)))
}

/// `/Title` of the document information dictionary.
fn title(doc: &Document) -> Option<String> {
    let info = doc.trailer.get(b"Info").ok()?;
    let info = match info {
        Object::Reference(id) => doc.get_dictionary(*id).ok()?,
        Object::Dictionary(d) => d,
        _ => return None,
    };
    let t = decode_text_string(info.get(b"Title").ok()?).ok()?;
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    (!t.is_empty()).then_some(t)
}

/// Joins a line with the next when the sentence goes on there: the line does not end a
/// sentence, and it is a full-width line (a wrapped one) or the next starts in lower case or
/// with a digit. Blank lines between are ignored for that (a PDF places lines, and a reader
/// often cannot tell a line gap from a paragraph gap). Short lines without a full stop
/// (headings) stay lines of their own.
fn unwrap_lines(s: &str) -> String {
    let width = s.lines().map(|l| l.trim().chars().count()).max().unwrap_or(0);
    let mut out = String::with_capacity(s.len());
    let mut gap = false; // blank lines before the next line
    let mut prev: Option<&str> = None;
    for line in s.lines().map(str::trim) {
        if line.is_empty() {
            gap = prev.is_some();
            continue;
        }
        if let Some(p) = prev {
            let full = p.chars().count() * 10 >= width * 6;
            let continues = !p.ends_with(['.', '?', '!', ':']) && (full || line.starts_with(|c: char| c.is_lowercase() || c.is_ascii_digit()));
            if continues && p.ends_with('-') && !p.ends_with(" -") && line.starts_with(char::is_lowercase) {
                out.pop(); // "appoint-" + "ment"
            } else if continues {
                out.push(' ');
            } else {
                out.push_str(if gap { "\n\n" } else { "\n" });
            }
        }
        out.push_str(line);
        prev = Some(line);
        gap = false;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_lines_are_joined_and_headings_kept() {
        let s = "Interpreters\nFree interpreters are available in more\nthan 40 languages, including Spanish,\nMandarin and Arabic. Ask when you book an appoint-\nment.\n\nAnimals\nOnly assistance dogs.\nPets stay outside.";
        assert_eq!(unwrap_lines(s), "Interpreters\nFree interpreters are available in more than 40 languages, including Spanish, Mandarin and Arabic. Ask when you book an appointment.\n\nAnimals\nOnly assistance dogs.\nPets stay outside.");
        // every line set apart by a gap (as pdf-extract does with widely spaced lines)
        let gapped = s.replace('\n', "\n\n");
        assert_eq!(unwrap_lines(&gapped), "Interpreters\n\nFree interpreters are available in more than 40 languages, including Spanish, Mandarin and Arabic. Ask when you book an appointment.\n\nAnimals\n\nOnly assistance dogs.\n\nPets stay outside.");
    }

    #[test]
    fn the_magic_is_found_after_a_little_junk() {
        assert!(is_pdf(b"%PDF-1.7\n"));
        assert!(is_pdf(b"\xef\xbb\xbf\r\n%PDF-1.4"));
        assert!(!is_pdf(b"%!PS-Adobe-3.0"));
        assert!(!is_pdf(b""));
    }
}
