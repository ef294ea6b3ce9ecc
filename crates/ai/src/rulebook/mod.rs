//! The deterministic rule-book brain: a TOML (or YAML) file per agent defines a greeting,
//! intents (with example phrases, keywords, slots, templated replies and actions) and
//! fallbacks. Intents are matched by embedding similarity (MiniLM) combined with a lexical
//! score, so it also works without an embedder. The same input always gives the same reply.
//! [`lint`] checks a rule-book before it takes calls; [`author`] drafts one with Claude.

pub mod author;
pub mod lint;
mod matcher;
mod schema;
mod session;
pub mod slots;

use std::sync::Arc;

use async_trait::async_trait;

pub use lint::{Lint, LintOptions, Severity, lint, lint_text};
pub use schema::{Action, BookFormat, Intent, RuleBook, Slot, SlotKind, SyntaxError};

use crate::net_guard::ToolHttp;
use crate::{Brain, BrainSession, CallContext, EmbedKind, Embedder, Result};

pub struct RuleBookBrain {
    book: Arc<RuleBook>,
    matcher: Arc<matcher::Matcher>,
    http: ToolHttp,
    knowledge: Option<Arc<dyn crate::knowledge::KnowledgeSearch>>,
}

impl RuleBookBrain {
    /// Builds the brain; example phrases are embedded once here when an embedder is given.
    pub async fn new(book: RuleBook, embedder: Option<Arc<dyn Embedder>>) -> Result<Self> {
        let mut examples = Vec::new();
        for (i, intent) in book.intents.iter().enumerate() {
            for e in &intent.examples {
                examples.push((i, e.clone()));
            }
        }
        let vectors = match &embedder {
            Some(e) => Some(e.embed(examples.iter().map(|(_, t)| t.clone()).collect(), EmbedKind::Document).await?),
            None => None,
        };
        let matcher = matcher::Matcher::new(&book, examples, vectors, embedder);
        Ok(RuleBookBrain { book: Arc::new(book), matcher: Arc::new(matcher), http: ToolHttp::default(), knowledge: None })
    }

    /// The client (and network policy) the `http` actions run on; without it, the strict
    /// default ([`ToolHttp::default`]: https only, no private networks).
    pub fn with_tool_http(mut self, http: ToolHttp) -> Self {
        self.http = http;
        self
    }

    /// The agent's knowledge base, for `knowledge` actions and the knowledge fallback.
    pub fn with_knowledge(mut self, k: Arc<dyn crate::knowledge::KnowledgeSearch>) -> Self {
        self.knowledge = Some(k);
        self
    }
}

#[async_trait]
impl Brain for RuleBookBrain {
    fn name(&self) -> &'static str {
        "rulebook"
    }

    async fn session(&self, ctx: CallContext) -> Result<Box<dyn BrainSession>> {
        Ok(Box::new(session::Session::new(self.book.clone(), self.matcher.clone(), ctx, chrono::Local::now().date_naive(), self.http.clone()).with_knowledge(self.knowledge.clone())))
    }
}

#[cfg(test)]
mod tests;
